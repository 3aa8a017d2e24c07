module github.com/cefiot/cefiot/services/capture

go 1.26.0

replace (
	github.com/cefiot/cefiot/libs => ../../libs
	github.com/cefiot/cefiot/proto => ../../proto
)

require gocv.io/x/gocv v0.32.0 // indirect
