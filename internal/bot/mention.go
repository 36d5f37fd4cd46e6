package bot

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanName turns a configured name into the form the bot answers to and
// shows: surrounding space and any leading "@" removed, so CHAT_BOT_NAME
// may be written "bot" or "@bot".
func CleanName(s string) string {
	return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(s), "@"))
}

// cleanNames normalizes names and drops empty and duplicate ones
// (compared case-insensitively), keeping their order.
func cleanNames(names []string) []string {
	var out []string
	for _, n := range names {
		n = CleanName(n)
		if n == "" || slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// longestFirst orders names so that of two names where one starts the
// other ("bot", "bot helper") the longer is tried first.
func longestFirst(names []string) []string {
	return slices.SortedStableFunc(slices.Values(names), func(a, b string) int {
		return utf8.RuneCountInString(b) - utf8.RuneCountInString(a)
	})
}

// Mentioned reports whether text mentions one of names as a whole word:
// "@name", case-insensitive, at the start of the text or after a space or
// punctuation, and followed by the end, a space or punctuation. So
// "@bot," and "(@bot)" are mentions but "robot", "@bots", "@bot-x" and
// "me@bot.com" are not. It also returns the query: the text with every
// such mention removed and the separators left at its start (": ", ", ")
// trimmed, so "@bot: roll 2d6" asks "roll 2d6".
//
// Names are compared rune by rune with Unicode simple case folding, so any
// script works ("@小爱"). Like most chat apps, it needs a space or
// punctuation before the "@" even in scripts written without spaces.
func Mentioned(text string, names []string) (query string, ok bool) {
	return mentioned(text, longestFirst(cleanNames(names)))
}

// mentioned is Mentioned for names already clean and longest first.
func mentioned(text string, names []string) (query string, ok bool) {
	var b strings.Builder
	copied := 0 // text[:copied] is in b
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i:], '@')
		if j < 0 {
			break
		}
		at := i + j
		n := mentionAt(text, at, names)
		if n == 0 {
			i = at + 1
			continue
		}
		ok = true
		b.WriteString(text[copied:at])
		copied = at + n
		i = copied
	}
	if !ok {
		return "", false
	}
	b.WriteString(text[copied:])
	return tidyQuery(b.String()), true
}

// mentionAt returns the length in bytes of the mention starting with the
// "@" at text[at], or 0 if there is none.
func mentionAt(text string, at int, names []string) int {
	if at > 0 {
		prev, _ := utf8.DecodeLastRuneInString(text[:at])
		if isWordRune(prev) || prev == '@' {
			return 0 // inside a word or an address: "me@bot", "@@bot"
		}
	}
	rest := text[at+1:]
	for _, name := range names {
		n, ok := hasPrefixFold(rest, name)
		if ok && endsWord(rest[n:]) {
			return 1 + n
		}
	}
	return 0
}

// endsWord reports whether a name followed by s ends there: s is empty,
// or starts with a space, or with punctuation that does not join the name
// to more of a word ("@bot." ends a sentence, "@bot.com" goes on).
func endsWord(s string) bool {
	if s == "" {
		return true
	}
	r, n := utf8.DecodeRuneInString(s)
	if isWordRune(r) {
		return false
	}
	if isJoiner(r) {
		next, _ := utf8.DecodeRuneInString(s[n:])
		return len(s) == n || !isWordRune(next)
	}
	return true
}

// isWordRune reports whether r can be part of a name or word.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// isJoiner reports whether r, between two word runes, makes them one
// token: an address (bot.example), a hyphenated name (bot-x), a path, a
// second "@" or an apostrophe.
func isJoiner(r rune) bool {
	switch r {
	case '.', '-', '@', '/', '\'', '’':
		return true
	}
	return false
}

// hasPrefixFold reports whether s starts with prefix under Unicode simple
// case folding, and how many bytes of s the prefix covers (which may differ
// from len(prefix): "K" and the Kelvin sign fold together).
func hasPrefixFold(s, prefix string) (int, bool) {
	n := 0
	for _, pr := range prefix {
		if n >= len(s) {
			return 0, false
		}
		sr, size := utf8.DecodeRuneInString(s[n:])
		if !equalFold(sr, pr) {
			return 0, false
		}
		n += size
	}
	return n, true
}

func equalFold(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// tidyQuery collapses the gaps the removed mentions left and trims the
// separators people put after a leading mention ("@bot: …", "@bot, …").
func tidyQuery(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimSpace(strings.TrimLeft(s, ",:;"))
}
