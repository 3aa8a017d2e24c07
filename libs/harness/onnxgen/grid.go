// Package onnxgen writes small ONNX detection models for tests: real ONNX
// graphs (Conv, Add, Reshape, Transpose) that OpenCV's DNN module loads and
// runs like any exported detector, with outputs in the layouts YOLO exports
// use. Their "objects" are bright or red squares on a grid, so a test knows
// exactly what a picture must be labelled with, and where.
package onnxgen

import (
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// Layout is how a detector's output is laid out.
type Layout int

const (
	// YOLOv8 is [1, 4+classes, candidates]: cx, cy, w, h, then one score
	// per class (YOLOv8, v9, v11 exports).
	YOLOv8 Layout = iota
	// YOLOv5 is [1, candidates, 5+classes]: cx, cy, w, h, objectness, then
	// one score per class (YOLOv5 and v7 exports).
	YOLOv5
)

// Class names of GridDetector's classes, in order.
var Classes = []string{"white", "red"}

// GridDetector is a detector that splits its square input into Grid x
// Grid cells, each one candidate box (the cell itself), scored per class
// from the cell's mean colour: class 0 ("white") is the mean of the three
// channels, class 1 ("red") is red minus green minus blue. Its input is
// RGB scaled to 0..1, as YOLO exports expect.
type GridDetector struct {
	Input  int // input width and height, a multiple of Grid
	Grid   int
	Layout Layout
}

// Write writes the model to path.
func (g GridDetector) Write(path string) error {
	b, err := g.Bytes()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Bytes returns the model as an ONNX ModelProto.
func (g GridDetector) Bytes() ([]byte, error) {
	if g.Grid < 1 || g.Input < g.Grid || g.Input%g.Grid != 0 {
		return nil, fmt.Errorf("onnxgen: input %d is not a multiple of grid %d", g.Input, g.Grid)
	}
	k := g.Input / g.Grid
	fields := 4 + len(Classes)
	if g.Layout == YOLOv5 {
		fields++
	}
	first := 4 // the first class score's channel
	if g.Layout == YOLOv5 {
		first = 5
	}
	// Conv: box channels 0 (the cell's position is added after), the
	// objectness channel a constant 1 (its bias), class channels a mean.
	weights := make([]float32, fields*3*k*k)
	bias := make([]float32, fields)
	per := float32(1) / float32(k*k)
	channelWeights := [][3]float32{{per / 3, per / 3, per / 3}, {per, -per, -per}}
	for c, cw := range channelWeights {
		out := first + c
		for ch := 0; ch < 3; ch++ {
			for i := 0; i < k*k; i++ {
				weights[((out*3)+ch)*k*k+i] = cw[ch]
			}
		}
	}
	if g.Layout == YOLOv5 {
		bias[4] = 1
	}
	// The cells' boxes, in input pixels.
	cells := make([]float32, fields*g.Grid*g.Grid)
	for y := 0; y < g.Grid; y++ {
		for x := 0; x < g.Grid; x++ {
			i := y*g.Grid + x
			cells[0*g.Grid*g.Grid+i] = float32(x*k) + float32(k)/2
			cells[1*g.Grid*g.Grid+i] = float32(y*k) + float32(k)/2
			cells[2*g.Grid*g.Grid+i] = float32(k)
			cells[3*g.Grid*g.Grid+i] = float32(k)
		}
	}
	n := int64(g.Grid * g.Grid)
	var graph []byte
	graph = appendNode(graph, "Conv", []string{"images", "w", "b"}, "features",
		attrInts("kernel_shape", int64(k), int64(k)), attrInts("strides", int64(k), int64(k)))
	graph = appendNode(graph, "Add", []string{"features", "cells"}, "boxes")
	out := "output0"
	reshaped := out
	if g.Layout == YOLOv5 {
		reshaped = "flat"
	}
	graph = appendNode(graph, "Reshape", []string{"boxes", "shape"}, reshaped)
	outShape := []int64{1, int64(fields), n}
	if g.Layout == YOLOv5 {
		graph = appendNode(graph, "Transpose", []string{"flat"}, out, attrInts("perm", 0, 2, 1))
		outShape = []int64{1, n, int64(fields)}
	}
	graph = protowire.AppendTag(graph, 2, protowire.BytesType)
	graph = protowire.AppendString(graph, "grid-detector")
	graph = appendMessage(graph, 5, floatTensor("w", []int64{int64(fields), 3, int64(k), int64(k)}, weights))
	graph = appendMessage(graph, 5, floatTensor("b", []int64{int64(fields)}, bias))
	graph = appendMessage(graph, 5, floatTensor("cells", []int64{1, int64(fields), int64(g.Grid), int64(g.Grid)}, cells))
	graph = appendMessage(graph, 5, int64Tensor("shape", []int64{3}, []int64{1, int64(fields), n}))
	graph = appendMessage(graph, 11, valueInfo("images", []int64{1, 3, int64(g.Input), int64(g.Input)}))
	graph = appendMessage(graph, 12, valueInfo(out, outShape))

	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType) // ir_version
	model = protowire.AppendVarint(model, 7)
	model = protowire.AppendTag(model, 2, protowire.BytesType) // producer_name
	model = protowire.AppendString(model, "cefiot onnxgen")
	model = appendMessage(model, 7, graph)
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType) // version
	opset = protowire.AppendVarint(opset, 13)
	model = appendMessage(model, 8, opset)
	return model, nil
}

func appendMessage(b []byte, field protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// appendNode appends a NodeProto (GraphProto field 1).
func appendNode(graph []byte, op string, inputs []string, output string, attrs ...[]byte) []byte {
	var n []byte
	for _, in := range inputs {
		n = protowire.AppendTag(n, 1, protowire.BytesType)
		n = protowire.AppendString(n, in)
	}
	n = protowire.AppendTag(n, 2, protowire.BytesType)
	n = protowire.AppendString(n, output)
	n = protowire.AppendTag(n, 3, protowire.BytesType)
	n = protowire.AppendString(n, output)
	n = protowire.AppendTag(n, 4, protowire.BytesType)
	n = protowire.AppendString(n, op)
	for _, a := range attrs {
		n = appendMessage(n, 5, a)
	}
	return appendMessage(graph, 1, n)
}

// attrInts is an AttributeProto of type INTS.
func attrInts(name string, values ...int64) []byte {
	var a []byte
	a = protowire.AppendTag(a, 1, protowire.BytesType)
	a = protowire.AppendString(a, name)
	var packed []byte
	for _, v := range values {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	a = protowire.AppendTag(a, 8, protowire.BytesType)
	a = protowire.AppendBytes(a, packed)
	a = protowire.AppendTag(a, 20, protowire.VarintType) // type INTS
	return protowire.AppendVarint(a, 7)
}

func tensorHeader(name string, dims []int64, dataType uint64) []byte {
	var t []byte
	var packed []byte
	for _, d := range dims {
		packed = protowire.AppendVarint(packed, uint64(d))
	}
	t = protowire.AppendTag(t, 1, protowire.BytesType)
	t = protowire.AppendBytes(t, packed)
	t = protowire.AppendTag(t, 2, protowire.VarintType)
	t = protowire.AppendVarint(t, dataType)
	t = protowire.AppendTag(t, 8, protowire.BytesType)
	return protowire.AppendString(t, name)
}

// floatTensor is a TensorProto of FLOAT with its data raw (little endian).
func floatTensor(name string, dims []int64, data []float32) []byte {
	t := tensorHeader(name, dims, 1)
	raw := make([]byte, 0, 4*len(data))
	for _, v := range data {
		raw = protowire.AppendFixed32(raw, math.Float32bits(v))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

// int64Tensor is a TensorProto of INT64 with its data raw.
func int64Tensor(name string, dims []int64, data []int64) []byte {
	t := tensorHeader(name, dims, 7)
	raw := make([]byte, 0, 8*len(data))
	for _, v := range data {
		raw = protowire.AppendFixed64(raw, uint64(v))
	}
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

// valueInfo is a ValueInfoProto of a FLOAT tensor of a fixed shape.
func valueInfo(name string, shape []int64) []byte {
	var dims []byte
	for _, d := range shape {
		var dim []byte
		dim = protowire.AppendTag(dim, 1, protowire.VarintType)
		dim = protowire.AppendVarint(dim, uint64(d))
		dims = appendMessage(dims, 1, dim)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType) // elem_type FLOAT
	tensor = protowire.AppendVarint(tensor, 1)
	tensor = appendMessage(tensor, 2, dims)
	var typ []byte
	typ = appendMessage(typ, 1, tensor)
	var v []byte
	v = protowire.AppendTag(v, 1, protowire.BytesType)
	v = protowire.AppendString(v, name)
	return appendMessage(v, 2, typ)
}
