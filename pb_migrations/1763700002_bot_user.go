package pb_migrations

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// BotEmail identifies the chat bot's account (internal/bot speaks as it).
// The auth collection requires an email; .invalid is reserved (RFC 2606),
// so no mail can ever reach the address and nobody can own it elsewhere.
const BotEmail = "bot@pocketchat.invalid"

// botInitialName is the bot's name until the server renames it to
// CHAT_BOT_NAME at start.
const botInitialName = "bot"

func init() {
	m.Register(botUserUp, botUserDown)
}

// botUserUp creates the bot's account, or flags an existing account with
// BotEmail as the bot. The password is random and never shown: the
// account exists so bot replies are ordinary messages with an author, not
// to be signed in to. A re-run keeps the existing account as it is (its
// name is the server's to set, its password stays unknown).
func botUserUp(app core.App) error {
	bot, err := findBotUser(app)
	if err != nil {
		return err
	}
	if bot == nil {
		users, err := app.FindCollectionByNameOrId(usersCollectionId)
		if err != nil {
			return fmt.Errorf("find users collection: %w", err)
		}
		bot = core.NewRecord(users)
		bot.SetEmail(BotEmail)
		bot.Set("name", botInitialName)
		bot.SetRandomPassword() // set as a hash, never returned
	}
	bot.Set("bot", true)
	bot.SetEmailVisibility(false)
	if err := app.Save(bot); err != nil {
		return fmt.Errorf("save bot user: %w", err)
	}
	return nil
}

// botUserDown deletes the bot's account. Its messages stay, without an
// author (messages.author does not cascade), and it leaves the rooms it
// was a member of.
func botUserDown(app core.App) error {
	bot, err := findBotUser(app)
	if err != nil || bot == nil {
		return err
	}
	if err := app.Delete(bot); err != nil {
		return fmt.Errorf("delete bot user: %w", err)
	}
	return nil
}

// findBotUser returns the account with BotEmail, or nil if there is none
// (or no users collection).
func findBotUser(app core.App) (*core.Record, error) {
	users, err := findCollection(app, usersCollectionId)
	if err != nil || users == nil {
		return nil, err
	}
	bot, err := app.FindAuthRecordByEmail(users, BotEmail)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find bot user: %w", err)
	}
	return bot, nil
}
