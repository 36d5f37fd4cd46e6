package main

import (
	"bytes"
	"strconv"
)

// A bench message's text says who sent it, its place in the sender's
// sequence and when it was sent, so a receiver needs nothing else:
//
//	cb <run> <sender connection> <sender seq> <send time, ns since the tool started>
//
// The run id keeps messages of other runs (or people) apart.
const textPrefix = "cb "

// formatText appends a message text to buf.
func formatText(buf []byte, run string, sender, sseq int, sent int64) []byte {
	buf = append(buf, textPrefix...)
	buf = append(buf, run...)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, int64(sender), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, int64(sseq), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, sent, 10)
	return buf
}

// parseText reads a text written by formatText for this run.
func parseText(text []byte, run string) (sender, sseq int32, sent int64, ok bool) {
	rest, found := bytes.CutPrefix(text, []byte(textPrefix))
	if !found {
		return 0, 0, 0, false
	}
	rest, found = bytes.CutPrefix(rest, []byte(run))
	if !found || len(rest) == 0 || rest[0] != ' ' {
		return 0, 0, 0, false
	}
	var nums [3]int64
	rest = rest[1:]
	for i := range nums {
		field := rest
		if i < 2 {
			var cut bool
			field, rest, cut = bytes.Cut(rest, []byte{' '})
			if !cut {
				return 0, 0, 0, false
			}
		}
		n, err := atoiPositive(field)
		if err != nil {
			return 0, 0, 0, false
		}
		nums[i] = n
	}
	if nums[0] > 1<<31-1 || nums[1] > 1<<31-1 {
		return 0, 0, 0, false
	}
	return int32(nums[0]), int32(nums[1]), nums[2], true
}

// atoiPositive parses a non-negative decimal without allocating.
func atoiPositive(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, strconv.ErrSyntax
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
