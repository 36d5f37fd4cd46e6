package bot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds of a roll: enough for any tabletop game, small enough that the
// answer stays a short message.
const (
	MaxDice  = 100
	MaxSides = 1000
)

// errDice is the usage shown for any bad roll.
var errDice = errors.New("roll needs dice like 2d6 or d20: 1 to 100 dice of 2 to 1000 sides")

// Dice is a roll of N dice with Sides sides each.
type Dice struct {
	N, Sides int
}

// ParseDice parses "NdM" (N may be left out: "d20" is "1d20"), case
// insensitive, within MaxDice and MaxSides.
func ParseDice(s string) (Dice, error) {
	n, m, ok := strings.Cut(strings.ToLower(s), "d")
	if !ok {
		return Dice{}, errDice
	}
	d := Dice{N: 1}
	if n != "" {
		var err error
		if d.N, err = smallInt(n); err != nil {
			return Dice{}, errDice
		}
	}
	sides, err := smallInt(m)
	if err != nil {
		return Dice{}, errDice
	}
	d.Sides = sides
	if d.N < 1 || d.N > MaxDice || d.Sides < 2 || d.Sides > MaxSides {
		return Dice{}, errDice
	}
	return d, nil
}

// smallInt parses up to 4 ASCII digits: no sign, no spaces, no overflow.
func smallInt(s string) (int, error) {
	if s == "" || len(s) > 4 || strings.Trim(s, "0123456789") != "" {
		return 0, errDice
	}
	return strconv.Atoi(s)
}

// Roll rolls the dice; intn(k) returns a number in [0, k).
func (d Dice) Roll(intn func(int) int) []int {
	out := make([]int, d.N)
	for i := range out {
		out[i] = 1 + intn(d.Sides)
	}
	return out
}

// roll answers the roll command: "🎲 2d6: 3 + 5 = 8".
func roll(args []string, intn func(int) int) string {
	spec := "1d6"
	switch len(args) {
	case 0:
	case 1:
		spec = args[0]
	default:
		return errDice.Error()
	}
	d, err := ParseDice(spec)
	if err != nil {
		return err.Error()
	}
	rolls := d.Roll(intn)
	label := fmt.Sprintf("🎲 %dd%d: ", d.N, d.Sides)
	if len(rolls) == 1 {
		return label + strconv.Itoa(rolls[0])
	}
	var b strings.Builder
	b.WriteString(label)
	total := 0
	for i, r := range rolls {
		if i > 0 {
			b.WriteString(" + ")
		}
		b.WriteString(strconv.Itoa(r))
		total += r
	}
	fmt.Fprintf(&b, " = %d", total)
	return b.String()
}
