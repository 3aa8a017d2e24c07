module github.com/cefiot/cefiot/services/sink

go 1.26.0

replace (
	github.com/cefiot/cefiot/proto => ../../proto
	github.com/cefiot/cefiot/libs => ../../libs
)
