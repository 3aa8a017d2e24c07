// A network stream read through FFmpeg's libraries directly (not through
// OpenCV's VideoCapture), so that each picture keeps what the stream says
// about it: its presentation time and its producer's wall-clock time (an
// RTSP camera's RTCP sender reports, which FFmpeg attaches to packets as
// AV_PKT_DATA_PRFT). Pictures are converted to BGR into OpenCV Mats.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>
#include <opencv2/core.hpp>

#include "reader.hpp"

extern "C" {
#include <libavutil/dict.h>
#include <libavutil/error.h>
}

namespace cefiot_av {

void message(char* err, int err_len, const char* what, int code) {
	char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
	av_strerror(code, buf, sizeof buf);
	std::snprintf(err, err_len, "%s: %s", what, buf);
}

int64_t to_us(int64_t ts, AVRational tb) { return av_rescale_q(ts, tb, AVRational{1, 1000000}); }

// producer_wallclock is the producer's wall-clock time (microseconds since
// the Unix epoch) a packet carries, or 0.
int64_t producer_wallclock(const AVPacket* pkt) {
	size_t size = 0;
	const uint8_t* sd = av_packet_get_side_data(pkt, AV_PKT_DATA_PRFT, &size);
	if (!sd || size < sizeof(AVProducerReferenceTime)) return 0;
	int64_t wall = reinterpret_cast<const AVProducerReferenceTime*>(sd)->wallclock;
	return wall > 0 ? wall : 0;
}

bool next_packet(reader* r) {
	for (;;) {
		if (av_read_frame(r->ic, r->pkt) < 0) return false;
		if (r->pkt->stream_index != r->stream) {
			av_packet_unref(r->pkt);
			continue;
		}
		int64_t wall = producer_wallclock(r->pkt);
		if (r->parser_shifts) {
			std::swap(r->pkt->pts, r->prev_pts);
			std::swap(r->pkt->dts, r->prev_dts);
			std::swap(wall, r->prev_wall);
		}
		if (wall > 0 && r->pkt->pts != AV_NOPTS_VALUE) {
			r->producer_offset_us = wall - to_us(r->pkt->pts, r->ic->streams[r->stream]->time_base);
			r->have_producer = true;
		}
		return true;
	}
}

int convert(reader* r, void* mat) {
	AVFrame* f = r->frame;
	if (r->hw_pix_fmt >= 0 && f->format == r->hw_pix_fmt) {
		// A picture in the device's memory: downloaded first.
		av_frame_unref(r->sw_frame);
		if (av_hwframe_transfer_data(r->sw_frame, f, 0) < 0) return 0;
		f = r->sw_frame;
	}
	try {
		cv::Mat* m = static_cast<cv::Mat*>(mat);
		m->create(f->height, f->width, CV_8UC3);
		r->sws = sws_getCachedContext(r->sws, f->width, f->height, static_cast<AVPixelFormat>(f->format),
		                              f->width, f->height, AV_PIX_FMT_BGR24, SWS_BICUBIC, nullptr, nullptr, nullptr);
		if (!r->sws) return 0;
		uint8_t* dst[4] = {m->data, nullptr, nullptr, nullptr};
		int dst_stride[4] = {static_cast<int>(m->step[0]), 0, 0, 0};
		sws_scale(r->sws, f->data, f->linesize, 0, f->height, dst, dst_stride);
		return 1;
	} catch (...) {
		return 0;
	}
}

namespace {

void release(reader* r) {
	drop_kept(r);
	release_hw(r);
	if (r->sws) sws_freeContext(r->sws);
	if (r->frame) av_frame_free(&r->frame);
	if (r->pkt) av_packet_free(&r->pkt);
	if (r->dec) avcodec_free_context(&r->dec);
	if (r->ic) avformat_close_input(&r->ic);
	delete r;
}

}  // namespace
}  // namespace cefiot_av

using namespace cefiot_av;

extern "C" {

// hw: 0 software, 1 the machine's VAAPI device when it has one (else
// software), 2 VAAPI or fail.
void* cefiot_av_open(const char* url, const char* const* keys, const char* const* values, int n, int packets, int hw, char* err, int err_len) {
	reader* r = new reader();
	r->packets = packets != 0;
	AVDictionary* opts = nullptr;
	for (int i = 0; i < n; i++) av_dict_set(&opts, keys[i], values[i], 0);
	int rc = avformat_open_input(&r->ic, url, nullptr, &opts);
	av_dict_free(&opts);
	if (rc < 0) {
		message(err, err_len, "open", rc);
		release(r);
		return nullptr;
	}
	if ((rc = avformat_find_stream_info(r->ic, nullptr)) < 0) {
		message(err, err_len, "stream info", rc);
		release(r);
		return nullptr;
	}
	const AVCodec* codec = nullptr;
	r->stream = av_find_best_stream(r->ic, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
	if (r->stream < 0 || !codec) {
		std::snprintf(err, err_len, "no video stream FFmpeg can decode");
		release(r);
		return nullptr;
	}
	for (unsigned i = 0; i < r->ic->nb_streams; i++) {
		if (static_cast<int>(i) != r->stream) r->ic->streams[i]->discard = AVDISCARD_ALL;
	}
	r->dec = avcodec_alloc_context3(codec);
	r->pkt = av_packet_alloc();
	r->frame = av_frame_alloc();
	if (!r->dec || !r->pkt || !r->frame) {
		std::snprintf(err, err_len, "out of memory");
		release(r);
		return nullptr;
	}
	if ((rc = avcodec_parameters_to_context(r->dec, r->ic->streams[r->stream]->codecpar)) < 0) {
		message(err, err_len, "decoder parameters", rc);
		release(r);
		return nullptr;
	}
	// One thread: a camera's pictures come out as soon as decoded (frame
	// threads would hold several back), and many cameras share the cores.
	r->dec->thread_count = 1;
	r->dec->pkt_timebase = r->ic->streams[r->stream]->time_base;
	const char* demuxer = r->ic->iformat ? r->ic->iformat->name : "";
	bool rtp = std::strcmp(demuxer, "rtsp") == 0 || std::strcmp(demuxer, "sdp") == 0 || std::strcmp(demuxer, "rtp") == 0;
	r->parser_shifts = rtp && (codec->id == AV_CODEC_ID_H264 || codec->id == AV_CODEC_ID_HEVC);
	if (hw != 0) {
		char why[256] = {0};
		if (!setup_hw(r, codec, why, sizeof why) && hw == 2) {
			std::snprintf(err, err_len, "hardware decoding (VAAPI): %s", why);
			release(r);
			return nullptr;
		}
	}
	if ((rc = avcodec_open2(r->dec, codec, nullptr)) < 0) {
		message(err, err_len, "open decoder", rc);
		release(r);
		return nullptr;
	}
	return r;
}

// cefiot_av_grab decodes the next picture: 1, or 0 at the end of the
// stream or on an error. In packet mode it reads and keeps the next
// packet instead (cefiot_av_keep).
int cefiot_av_grab(void* p) {
	reader* r = static_cast<reader*>(p);
	if (r->packets) return cefiot_av_keep(r);
	r->have_frame = false;
	for (;;) {
		int rc = avcodec_receive_frame(r->dec, r->frame);
		if (rc == 0) {
			r->have_frame = true;
			r->cur_pts = r->frame->best_effort_timestamp;
			return 1;
		}
		if (rc != AVERROR(EAGAIN) || r->draining) return 0;
		if (!next_packet(r)) {
			r->draining = true;
			avcodec_send_packet(r->dec, nullptr);
			continue;
		}
		// A packet the decoder refuses (corrupt) is skipped: the stream
		// goes on with the next one.
		avcodec_send_packet(r->dec, r->pkt);
		av_packet_unref(r->pkt);
	}
}

// cefiot_av_retrieve converts the last picture to BGR into mat; in packet
// mode it decodes the last packet's picture first.
int cefiot_av_retrieve(void* p, void* mat) {
	reader* r = static_cast<reader*>(p);
	if (r->packets) return cefiot_av_decode_kept(r, r->next_seq - 1, mat);
	if (!r->have_frame) return 0;
	return convert(r, mat);
}

// cefiot_av_times gives the last picture's (or packet's) presentation time
// from the stream's start, in ms (NaN when it has none), and its
// producer's wall-clock time in microseconds since the Unix epoch (0 while
// the stream has given none).
void cefiot_av_times(void* p, double* pos_ms, int64_t* producer_us) {
	reader* r = static_cast<reader*>(p);
	*pos_ms = NAN;
	*producer_us = 0;
	if (!r->have_frame) return;
	int64_t pts = r->cur_pts;
	if (pts == AV_NOPTS_VALUE) return;
	AVStream* st = r->ic->streams[r->stream];
	int64_t start = st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time;
	*pos_ms = to_us(pts - start, st->time_base) / 1000.0;
	if (r->have_producer) *producer_us = to_us(pts, st->time_base) + r->producer_offset_us;
}

double cefiot_av_fps(void* p) {
	reader* r = static_cast<reader*>(p);
	AVRational fr = av_guess_frame_rate(r->ic, r->ic->streams[r->stream], nullptr);
	return fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0;
}

const char* cefiot_av_codec(void* p) { return avcodec_get_name(static_cast<reader*>(p)->dec->codec_id); }

// cefiot_av_hw is 1 when the stream is decoded by the machine's VAAPI
// device.
int cefiot_av_hw(void* p) { return static_cast<reader*>(p)->hw_pix_fmt >= 0 ? 1 : 0; }

void cefiot_av_close(void* p) { release(static_cast<reader*>(p)); }

}
