package bot

import "strings"

// The commands the bot knows, answered locally whatever the backend.
const (
	CmdHelp  = "help"
	CmdTime  = "time"
	CmdRoll  = "roll"
	CmdWho   = "who"
	CmdStats = "stats"
)

// Command is a parsed bot command: "roll 2d6" or "/roll 2d6" is
// {Name: "roll", Args: ["2d6"]}.
type Command struct {
	Name string   // one of the Cmd constants, lower case
	Args []string // the words after the name, none empty
}

// ParseCommand parses text as a command: a known command name, with or
// without one leading "/", in any case, then arguments separated by white
// space. It reports false for anything else, so unknown words reach the
// backend (or the friendly fallback) instead of an error.
func ParseCommand(text string) (Command, bool) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Command{}, false
	}
	name := strings.ToLower(strings.TrimPrefix(fields[0], "/"))
	if !known(name) {
		return Command{}, false
	}
	var args []string
	if len(fields) > 1 {
		args = fields[1:]
	}
	return Command{Name: name, Args: args}, true
}

// known reports whether name is one of the Cmd constants.
func known(name string) bool {
	switch name {
	case CmdHelp, CmdTime, CmdRoll, CmdWho, CmdStats:
		return true
	}
	return false
}

// isSlashCommand reports whether text is a command written as "/name …",
// which the bot answers in a room it can see without being mentioned.
func isSlashCommand(text string) bool {
	if !strings.HasPrefix(text, "/") {
		return false
	}
	_, ok := ParseCommand(text)
	return ok
}
