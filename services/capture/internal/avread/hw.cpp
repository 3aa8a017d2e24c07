// Hardware decoding through FFmpeg's VAAPI device (Intel and AMD GPUs,
// /dev/dri): pictures are decoded in the device's memory and downloaded
// only when converted, so a picture grabbed and not looked at costs the
// CPU nothing but its packet.
#include <cstdio>

#include "reader.hpp"

extern "C" {
#include <libavutil/hwcontext.h>
}

namespace cefiot_av {

namespace {

// hw_format picks the device's pixel format among those the decoder
// offers, else the software one FFmpeg prefers (a stream the device
// cannot decode is decoded in software).
AVPixelFormat hw_format(AVCodecContext* ctx, const AVPixelFormat* offered) {
	const reader* r = static_cast<const reader*>(ctx->opaque);
	for (const AVPixelFormat* f = offered; *f != AV_PIX_FMT_NONE; f++) {
		if (*f == r->hw_pix_fmt) return *f;
	}
	return avcodec_default_get_format(ctx, offered);
}

}  // namespace

bool setup_hw(reader* r, const AVCodec* codec, char* err, int err_len) {
	int fmt = -1;
	for (int i = 0;; i++) {
		const AVCodecHWConfig* c = avcodec_get_hw_config(codec, i);
		if (!c) break;
		if ((c->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) && c->device_type == AV_HWDEVICE_TYPE_VAAPI) {
			fmt = c->pix_fmt;
			break;
		}
	}
	if (fmt < 0) {
		std::snprintf(err, err_len, "FFmpeg's %s decoder has no VAAPI support", codec->name);
		return false;
	}
	int rc = av_hwdevice_ctx_create(&r->hw_device, AV_HWDEVICE_TYPE_VAAPI, nullptr, nullptr, 0);
	if (rc < 0) {
		message(err, err_len, "no VAAPI device", rc);
		return false;
	}
	r->sw_frame = av_frame_alloc();
	r->dec->hw_device_ctx = av_buffer_ref(r->hw_device);
	if (!r->sw_frame || !r->dec->hw_device_ctx) {
		std::snprintf(err, err_len, "out of memory");
		release_hw(r);
		return false;
	}
	r->hw_pix_fmt = fmt;
	r->dec->opaque = r;
	r->dec->get_format = hw_format;
	return true;
}

void release_hw(reader* r) {
	if (r->dec && r->hw_pix_fmt >= 0) {
		r->dec->get_format = avcodec_default_get_format;
	}
	r->hw_pix_fmt = -1;
	if (r->sw_frame) av_frame_free(&r->sw_frame);
	if (r->hw_device) av_buffer_unref(&r->hw_device);
}

}  // namespace cefiot_av
