// The state of one stream read through FFmpeg, shared by the two ways of
// reading it: picture by picture (avread.cpp) and packets kept to be
// decoded on demand (packets.cpp).
#ifndef CEFIOT_AVREAD_READER_HPP
#define CEFIOT_AVREAD_READER_HPP

#include <cstdint>
#include <deque>
#include <mutex>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

namespace cefiot_av {

// kept is a packet kept for decoding on demand: its number in the
// connection (seq) and whether a decoder can start at it.
struct kept {
	AVPacket* pkt;
	int64_t seq;
	bool key;
};

struct reader {
	AVFormatContext* ic = nullptr;
	AVCodecContext* dec = nullptr;
	AVPacket* pkt = nullptr;
	AVFrame* frame = nullptr;
	SwsContext* sws = nullptr;
	int stream = -1;
	// Hardware decoding (hw.cpp): the device, the pixel format of its
	// pictures, and a picture downloaded from it for converting.
	AVBufferRef* hw_device = nullptr;
	int hw_pix_fmt = -1;  // AVPixelFormat; -1: software decoding
	AVFrame* sw_frame = nullptr;
	bool have_frame = false;
	bool draining = false;
	// FFmpeg's H.264 and H.265 parsers complete a picture received over
	// RTP when the next one's first packet arrives, and give it that
	// packet's times (presentation and producer's): each packet is given
	// its predecessor's instead.
	bool parser_shifts = false;
	int64_t prev_pts = AV_NOPTS_VALUE, prev_dts = AV_NOPTS_VALUE, prev_wall = 0;
	// The producer's wall clock minus the presentation time (both in
	// microseconds) of the last packet that carried a producer time.
	bool have_producer = false;
	int64_t producer_offset_us = 0;

	// Packet mode: grabbing reads a packet and keeps it, undecoded; a
	// picture is decoded only when asked for (decode_kept).
	bool packets = false;
	int64_t cur_pts = AV_NOPTS_VALUE;  // the last grabbed packet's
	int64_t next_seq = 0;              // the next packet's number
	std::mutex mu;                     // guards q and q_bytes
	std::deque<kept> q;                // from a keyframe on
	int64_t q_bytes = 0;
	// The decoder's side (one caller at a time): the last packet fed to
	// the decoder (-1: none since it was flushed), and the decoded
	// picture's packet (-1: none).
	int64_t fed = -1;
	int64_t decoded = -1;
};

void message(char* err, int err_len, const char* what, int code);
int64_t to_us(int64_t ts, AVRational tb);
int64_t producer_wallclock(const AVPacket* pkt);
// next_packet reads the stream's next packet into r->pkt, with its times
// corrected and the producer's clock noted; false at the end or on error.
bool next_packet(reader* r);
// convert converts r->frame to BGR into mat (a cv::Mat*).
int convert(reader* r, void* mat);
void drop_kept(reader* r);
// setup_hw prepares r->dec (not yet opened) to decode on the machine's
// VAAPI device; false, with the reason in err, when there is none usable.
bool setup_hw(reader* r, const AVCodec* codec, char* err, int err_len);
// release_hw frees what setup_hw made.
void release_hw(reader* r);

}  // namespace cefiot_av

extern "C" {
int cefiot_av_keep(void* p);
int cefiot_av_decode_kept(void* p, int64_t seq, void* mat);
}

#endif
