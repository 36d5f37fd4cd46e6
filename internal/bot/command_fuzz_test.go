package bot_test

import (
	"reflect"
	"strings"
	"testing"
	"unicode"

	"pocketchat/internal/bot"
)

// FuzzParseCommand checks that the parser never panics and that what it
// accepts is well formed and parses the same when written back.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"help", "/roll 2d6", "ROLL d20", "who", "/stats x y", "", "/", "robot", "roll\u00a02d6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, ok := bot.ParseCommand(text)
		if !ok {
			if cmd.Name != "" || cmd.Args != nil {
				t.Fatalf("ParseCommand(%q) = %+v, false; want the zero Command", text, cmd)
			}
			return
		}
		switch cmd.Name {
		case bot.CmdHelp, bot.CmdTime, bot.CmdRoll, bot.CmdWho, bot.CmdStats:
		default:
			t.Fatalf("ParseCommand(%q): unknown name %q", text, cmd.Name)
		}
		for _, a := range cmd.Args {
			if a == "" || strings.ContainsFunc(a, unicode.IsSpace) {
				t.Fatalf("ParseCommand(%q): bad argument %q", text, a)
			}
		}
		for _, again := range []string{
			strings.Join(append([]string{cmd.Name}, cmd.Args...), " "),
			"/" + strings.Join(append([]string{strings.ToUpper(cmd.Name)}, cmd.Args...), "\t"),
		} {
			got, ok := bot.ParseCommand(again)
			if !ok || !reflect.DeepEqual(got, cmd) {
				t.Fatalf("ParseCommand(%q) = %+v, %v; want %+v as from %q", again, got, ok, cmd, text)
			}
		}
	})
}
