package bot_test

import (
	"reflect"
	"testing"

	"pocketchat/internal/bot"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		text   string
		want   bot.Command
		wantOK bool
	}{
		{"help", bot.Command{Name: "help"}, true},
		{"/help", bot.Command{Name: "help"}, true},
		{"HELP", bot.Command{Name: "help"}, true},
		{"/Time", bot.Command{Name: "time"}, true},
		{"roll 2d6", bot.Command{Name: "roll", Args: []string{"2d6"}}, true},
		{"  /roll\t2d6   extra ", bot.Command{Name: "roll", Args: []string{"2d6", "extra"}}, true},
		{"who", bot.Command{Name: "who"}, true},
		{"stats please", bot.Command{Name: "stats", Args: []string{"please"}}, true},

		{"", bot.Command{}, false},
		{"   ", bot.Command{}, false},
		{"/", bot.Command{}, false},
		{"//help", bot.Command{}, false},
		{"/ help", bot.Command{}, false},
		{"helpme", bot.Command{}, false},
		{"/helpme", bot.Command{}, false},
		{"what time is it", bot.Command{}, false},
		{"/unknown", bot.Command{}, false},
		{"rolls 2d6", bot.Command{}, false},
	}
	for _, tt := range tests {
		got, ok := bot.ParseCommand(tt.text)
		if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v, %v", tt.text, got, ok, tt.want, tt.wantOK)
		}
	}
}
