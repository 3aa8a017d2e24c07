// The default people detector's SVM coefficients, copied out of OpenCV.
// gocv v0.32's HOGDefaultPeopleDetector wraps the std::vector OpenCV
// returns in a cv::Mat without copying it, so the Mat points at freed
// memory and the detector it makes scores every window positive.
#include <algorithm>
#include <vector>
#include <opencv2/objdetect.hpp>

extern "C" int cefiot_default_people_detector(float* out, int n) {
	std::vector<float> d = cv::HOGDescriptor::getDefaultPeopleDetector();
	if (static_cast<int>(d.size()) > n) {
		return -1;
	}
	std::copy(d.begin(), d.end(), out);
	return static_cast<int>(d.size());
}
