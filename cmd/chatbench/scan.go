package main

import (
	"bytes"
)

// A cheap scan of the few JSON fields the tool reads from every frame or
// event. At 100,000 deliveries a second, decoding each frame with
// encoding/json (reflection, a map of fields, copies of the values) cost
// the tool more CPU than the server spent sending them; these functions
// walk the bytes once, allocate nothing and return sub-slices of the
// input. They trust the input to be JSON (the server's encoder wrote it)
// but never read out of bounds on malformed input: they report "not
// found" instead.

// jsonMember returns the raw value of the member named key of the JSON
// object obj (strings with their quotes), or nil if obj is not an object
// or has no such member. Member names are compared as raw bytes, so a
// name written with escapes is not found; the server writes none.
func jsonMember(obj []byte, key string) []byte {
	v := jsonMemberFrom(obj, key)
	if end := skipValue(v, 0); end > 0 {
		return v[:end]
	}
	return nil
}

// jsonMemberFrom is jsonMember without finding the value's end: it returns
// obj from the start of the value on. For a member whose value the caller
// scans anyway (an object it looks into), that saves skipping it once.
func jsonMemberFrom(obj []byte, key string) []byte {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return nil // '}' (the end) or malformed
		}
		end := skipString(obj, i)
		if end < 0 {
			return nil
		}
		name := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return nil
		}
		i = skipSpace(obj, i+1)
		if string(name) == key {
			return obj[i:]
		}
		vend := skipValue(obj, i)
		if vend < 0 {
			return nil
		}
		i = skipSpace(obj, vend)
		if i >= len(obj) || obj[i] != ',' {
			return nil
		}
		i++
	}
}

// jsonMembers2 returns the raw values of the members k1 and k2 of the
// object obj (nil for one that is missing) in one pass that stops once
// both are found.
func jsonMembers2(obj []byte, k1, k2 string) (v1, v2 []byte) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, nil
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return v1, v2
		}
		end := skipString(obj, i)
		if end < 0 {
			return v1, v2
		}
		name := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return v1, v2
		}
		i = skipSpace(obj, i+1)
		vend := skipValue(obj, i)
		if vend < 0 {
			return v1, v2
		}
		// Compared, not converted: a switch on string(name) with
		// variable cases would allocate a string per member.
		if string(name) == k1 {
			v1 = obj[i:vend]
		} else if string(name) == k2 {
			v2 = obj[i:vend]
		}
		if v1 != nil && v2 != nil {
			return v1, v2
		}
		i = skipSpace(obj, vend)
		if i >= len(obj) || obj[i] != ',' {
			return v1, v2
		}
		i++
	}
}

// frameType returns the value of the "type" member of a frame, without
// quotes. The server writes it first, so that is tried before a scan.
func frameType(frame []byte) []byte {
	const prefix = `{"type":"`
	if bytes.HasPrefix(frame, []byte(prefix)) {
		rest := frame[len(prefix):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return rest[:j]
		}
	}
	return jsonString(jsonMember(frame, "type"))
}

// jsonString strips the quotes of a raw JSON string value without
// unescaping (the tool's own texts and the server's codes need none); it
// returns nil for anything that is not a string.
func jsonString(raw []byte) []byte {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		return raw[1 : len(raw)-1]
	}
	return nil
}

// jsonInt parses a raw JSON integer; ok is false for anything else
// (fractions, exponents, strings, overflow).
func jsonInt(raw []byte) (n int64, ok bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i]
// (a quote), or -1 if it does not end. A plain loop: the strings of a
// frame are short, where bytes.IndexByte's set-up costs more than it saves.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++ // the escaped byte
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value that starts at
// b[i], or -1 if it is malformed or does not end. Objects and arrays are
// skipped by counting brackets outside strings.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // number, true, false, null
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}
