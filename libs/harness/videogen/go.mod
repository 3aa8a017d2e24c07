module github.com/cefiot/cefiot/libs/harness/videogen

go 1.26.0

require gocv.io/x/gocv v0.32.0
