// OpenCV's VideoCapture opened with open-time parameters (hardware
// acceleration), which gocv v0.32 cannot pass, with OpenCV's exceptions
// caught rather than aborting the process.
#include <cstdio>
#include <exception>
#include <vector>
#include <opencv2/videoio.hpp>

extern "C" {

void* cefiot_capture_open(const char* target, int api, const int* params, int n_params, char* err, int err_len) {
	try {
		std::vector<int> p(params, params + n_params);
		cv::VideoCapture* vc = new cv::VideoCapture();
		if (!vc->open(target, api, p) || !vc->isOpened()) {
			delete vc;
			std::snprintf(err, err_len, "OpenCV cannot open it");
			return nullptr;
		}
		return vc;
	} catch (const cv::Exception& e) {
		std::snprintf(err, err_len, "OpenCV: %s", e.err.c_str());
	} catch (const std::exception& e) {
		std::snprintf(err, err_len, "OpenCV: %s", e.what());
	}
	return nullptr;
}

int cefiot_capture_grab(void* vc) {
	try {
		return static_cast<cv::VideoCapture*>(vc)->grab() ? 1 : 0;
	} catch (...) {
		return 0;
	}
}

int cefiot_capture_retrieve(void* vc, void* mat) {
	try {
		return static_cast<cv::VideoCapture*>(vc)->retrieve(*static_cast<cv::Mat*>(mat)) ? 1 : 0;
	} catch (...) {
		return 0;
	}
}

double cefiot_capture_get(void* vc, int prop) {
	try {
		return static_cast<cv::VideoCapture*>(vc)->get(prop);
	} catch (...) {
		return 0;
	}
}

void cefiot_capture_close(void* vc) {
	try {
		delete static_cast<cv::VideoCapture*>(vc);
	} catch (...) {
	}
}

}
