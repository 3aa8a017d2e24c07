// Loading and running an ONNX model once, with OpenCV's exceptions caught:
// gocv v0.32 lets them through, and a model file that is not what it says
// would abort the process instead of failing its start with a reason.
#include <cstdio>
#include <exception>
#include <opencv2/dnn.hpp>

extern "C" int cefiot_onnx_probe(const char* path, int input, int* dims, int max_dims, char* err, int err_len) {
	try {
		cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
		if (net.empty()) {
			std::snprintf(err, err_len, "OpenCV cannot load it as ONNX");
			return -1;
		}
		cv::Mat picture(input, input, CV_8UC3, cv::Scalar(0, 0, 0));
		net.setInput(cv::dnn::blobFromImage(picture, 1.0 / 255, cv::Size(input, input), cv::Scalar(), true, false));
		cv::Mat out = net.forward();
		int n = out.dims < max_dims ? out.dims : max_dims;
		for (int i = 0; i < n; i++) {
			dims[i] = out.size[i];
		}
		return n;
	} catch (const cv::Exception& e) {
		std::snprintf(err, err_len, "OpenCV cannot load or run it as ONNX: %s", e.err.c_str());
	} catch (const std::exception& e) {
		std::snprintf(err, err_len, "OpenCV cannot load or run it as ONNX: %s", e.what());
	}
	return -1;
}
