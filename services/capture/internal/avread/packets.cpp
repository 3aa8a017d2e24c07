// Packet mode: a stream's packets are read and kept, undecoded, from the
// last keyframes on, and a picture is decoded only when asked for: from
// where the decoder stands when that is on the way, from the keyframe
// before it otherwise. A camera's main stream costs its demuxing while
// nothing moves, and its decoding only around the moments stored.
#include <vector>

#include "reader.hpp"

namespace cefiot_av {

namespace {

// keep_us is how far back from the newest packet a reader keeps the
// pictures it may be asked for (a detector's delay on another stream is
// well below it); whole groups of pictures are kept, from a keyframe on.
constexpr int64_t keep_us = 3000000;

// keep_bytes bounds the packets kept whatever the groups' length.
constexpr int64_t keep_bytes = 64 << 20;

void drop_front(reader* r) {
	r->q_bytes -= r->q.front().pkt->size;
	av_packet_free(&r->q.front().pkt);
	r->q.pop_front();
}

// trim drops the oldest groups of pictures that end more than keep_us
// before the newest packet, and the oldest packets past keep_bytes (then
// up to the next keyframe: they cannot be decoded without it); r->mu is
// held.
void trim(reader* r) {
	AVRational tb = r->ic->streams[r->stream]->time_base;
	int64_t newest = r->q.back().pkt->pts;
	for (;;) {
		size_t next_key = 1;
		while (next_key < r->q.size() && !r->q[next_key].key) next_key++;
		if (next_key == r->q.size()) break;
		int64_t pts = r->q[next_key].pkt->pts;
		bool old = pts != AV_NOPTS_VALUE && newest != AV_NOPTS_VALUE && to_us(newest - pts, tb) > keep_us;
		if (!old && r->q_bytes <= keep_bytes) break;
		while (r->q.size() > 0 && next_key-- > 0) drop_front(r);
	}
	while (r->q_bytes > keep_bytes && !r->q.empty()) drop_front(r);
	while (!r->q.empty() && !r->q.front().key) drop_front(r);
}

}  // namespace

void drop_kept(reader* r) {
	std::lock_guard<std::mutex> lock(r->mu);
	while (!r->q.empty()) drop_front(r);
}

}  // namespace cefiot_av

using namespace cefiot_av;

extern "C" {

// cefiot_av_keep reads the stream's next packet and keeps it: 1, or 0 at
// the end of the stream or on an error.
int cefiot_av_keep(void* p) {
	reader* r = static_cast<reader*>(p);
	r->have_frame = false;
	if (!next_packet(r)) return 0;
	AVPacket* pkt = av_packet_alloc();
	if (!pkt) return 0;
	av_packet_move_ref(pkt, r->pkt);
	bool key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
	r->cur_pts = pkt->pts;
	r->have_frame = true;
	std::lock_guard<std::mutex> lock(r->mu);
	if (r->q.empty() && !key) {
		av_packet_free(&pkt);  // undecodable without the keyframe before it
	} else {
		r->q.push_back(kept{pkt, r->next_seq, key});
		r->q_bytes += pkt->size;
		trim(r);
	}
	r->next_seq++;
	return 1;
}

// cefiot_av_decode_kept decodes the picture of kept packet seq and
// converts it to BGR into mat: 1, or 0 when the packet is no longer (or
// was never) kept or does not decode. One caller at a time; it may run
// while another thread keeps packets.
int cefiot_av_decode_kept(void* p, int64_t seq, void* mat) {
	reader* r = static_cast<reader*>(p);
	std::vector<AVPacket*> feed;
	int64_t from = 0, target = AV_NOPTS_VALUE;
	bool flush = false;
	{
		std::lock_guard<std::mutex> lock(r->mu);
		if (r->q.empty()) return 0;
		int64_t base = r->q.front().seq;
		if (seq < base || seq >= base + static_cast<int64_t>(r->q.size())) return 0;
		size_t i = static_cast<size_t>(seq - base);
		target = r->q[i].pkt->pts;
		if (target == AV_NOPTS_VALUE) return 0;
		if (r->decoded == seq) return convert(r, mat);
		size_t k = i;
		while (k > 0 && !r->q[k].key) k--;
		if (!r->q[k].key) return 0;
		if (r->fed >= r->q[k].seq && r->fed < seq) {
			from = r->fed + 1;
		} else {
			flush = true;
			from = r->q[k].seq;
		}
		// Packets after the target too, for a decoder that holds pictures
		// back to reorder them.
		for (size_t j = static_cast<size_t>(from - base); j < r->q.size(); j++) {
			AVPacket* c = av_packet_clone(r->q[j].pkt);
			if (!c) break;
			feed.push_back(c);
		}
	}
	if (flush) {
		avcodec_flush_buffers(r->dec);
		r->fed = -1;
	}
	r->decoded = -1;
	bool got = false;
	for (size_t j = 0; j < feed.size() && !got; j++) {
		int64_t s = from + static_cast<int64_t>(j);
		if (s > seq + 16) break;  // no decoder holds back that many
		// A packet the decoder refuses (corrupt) is skipped.
		avcodec_send_packet(r->dec, feed[j]);
		r->fed = s;
		while (avcodec_receive_frame(r->dec, r->frame) == 0) {
			if (r->frame->pts == target) {
				got = true;
				break;
			}
		}
	}
	for (AVPacket* c : feed) av_packet_free(&c);
	if (!got) return 0;
	r->decoded = seq;
	return convert(r, mat);
}

}
