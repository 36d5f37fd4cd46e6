package bot_test

import (
	"testing"

	"pocketchat/internal/bot"
)

func TestMentioned(t *testing.T) {
	tests := []struct {
		text      string
		names     []string
		wantOK    bool
		wantQuery string
	}{
		{"@bot roll 2d6", []string{"bot"}, true, "roll 2d6"},
		{"@bot", []string{"bot"}, true, ""},
		{"hey @bot what time is it?", []string{"bot"}, true, "hey what time is it?"},
		{"roll 2d6 @bot", []string{"bot"}, true, "roll 2d6"},
		{"@bot: roll 2d6", []string{"bot"}, true, "roll 2d6"},
		{"@bot, help", []string{"bot"}, true, "help"},
		{"thanks @bot.", []string{"bot"}, true, "thanks ."},
		{"(@bot) help", []string{"bot"}, true, "() help"},
		{"ask @bot!", []string{"bot"}, true, "ask !"},
		{"@BOT help", []string{"bot"}, true, "help"},
		{"@Bot help", []string{"@bot"}, true, "help"}, // a configured "@" is ignored
		{"hi\n@bot\thelp", []string{"bot"}, true, "hi help"},
		{"@bot @bot help", []string{"bot"}, true, "help"},

		{"robot help", []string{"bot"}, false, ""},
		{"bot help", []string{"bot"}, false, ""},
		{"@bots help", []string{"bot"}, false, ""},
		{"@robot help", []string{"bot"}, false, ""},
		{"@bot_x help", []string{"bot"}, false, ""},
		{"@bot1 help", []string{"bot"}, false, ""},
		{"@bot-x help", []string{"bot"}, false, ""},
		{"write to email@bot.com", []string{"bot"}, false, ""},
		{"@bot.com is a domain", []string{"bot"}, false, ""},
		{"@bot@example.com", []string{"bot"}, false, ""},
		{"@@bot", []string{"bot"}, false, ""},
		{"@ bot", []string{"bot"}, false, ""},
		{"@", []string{"bot"}, false, ""},
		{"", []string{"bot"}, false, ""},
		{"@bot", nil, false, ""},
		{"@bot", []string{"", "  "}, false, ""},

		// Unicode names.
		{"@小爱 help", []string{"小爱"}, true, "help"},
		{"@小爱", []string{"小爱"}, true, ""},
		{"你好，@小爱：几点了", []string{"小爱"}, true, "你好，：几点了"},
		{"@小爱同学", []string{"小爱"}, false, ""},      // a longer name, not this one
		{"你好@小爱 help", []string{"小爱"}, false, ""}, // no separator before "@"
		{"@ÉLODIE salut", []string{"élodie"}, true, "salut"},
		{"@élodies", []string{"élodie"}, false, ""},
		{"@bot\u2005help", []string{"bot"}, true, "help"}, // the space chat apps put after a mention

		// Aliases and names with spaces.
		{"@helper roll", []string{"bot", "helper"}, true, "roll"},
		{"@chat bot help", []string{"bot", "chat bot"}, true, "help"},
		{"@chat botx help", []string{"chat", "chat bot"}, true, "botx help"},
	}
	for _, tt := range tests {
		gotQuery, gotOK := bot.Mentioned(tt.text, tt.names)
		if gotOK != tt.wantOK || gotQuery != tt.wantQuery {
			t.Errorf("Mentioned(%q, %q) = %q, %v; want %q, %v", tt.text, tt.names, gotQuery, gotOK, tt.wantQuery, tt.wantOK)
		}
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bot", "bot"},
		{" @bot ", "bot"},
		{"@@小爱", "小爱"},
		{"Chat Bot", "Chat Bot"},
		{"@", ""},
	}
	for _, tt := range tests {
		if got := bot.CleanName(tt.in); got != tt.want {
			t.Errorf("CleanName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
