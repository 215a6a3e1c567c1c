package cli

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// helpFiles are the topics of walt help: help/<topic>.md, whose first line
// is "# <title>". Names follow WalT's topics where one matches
// (node-reboot, boot-modes, device-config...), since users' documents
// refer to them.
//
//go:embed help/*.md
var helpFiles embed.FS

func init() {
	register(
		&command{
			noun: "help", verb: "list", summary: "list the help topics",
			maxArgs: 0, run: helpList,
		},
		&command{
			noun: "help", verb: "show", summary: "print a help topic",
			args: "topic", minArgs: 1, maxArgs: 1, run: helpShow,
		},
	)
}

// helpTopic is one topic: its name, title and text.
type helpTopic struct {
	name, title, text string
}

// helpTopics returns every topic, sorted by name.
func helpTopics() []helpTopic {
	entries, err := fs.ReadDir(helpFiles, "help")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var topics []helpTopic
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".md")
		if !ok {
			continue
		}
		b, err := helpFiles.ReadFile("help/" + e.Name())
		if err != nil {
			panic(err)
		}
		text := string(b)
		title, _, _ := strings.Cut(text, "\n")
		topics = append(topics, helpTopic{name: name, title: strings.TrimPrefix(title, "# "), text: text})
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i].name < topics[j].name })
	return topics
}

func topicNames() []string {
	var names []string
	for _, t := range helpTopics() {
		names = append(names, t.name)
	}
	return names
}

func helpList(_ context.Context, e *env, _ []string) int {
	fmt.Fprintf(e.Stdout, "Help topics (walt help show TOPIC):\n")
	for _, t := range helpTopics() {
		fmt.Fprintf(e.Stdout, "    %-16s %s\n", t.name, t.title)
	}
	return ExitOK
}

func helpShow(_ context.Context, e *env, args []string) int {
	for _, t := range helpTopics() {
		if t.name == args[0] {
			fmt.Fprint(e.Stdout, t.text)
			return ExitOK
		}
	}
	e.errorf("unknown help topic %.64q; topics: %s.", args[0], strings.Join(topicNames(), ", "))
	fmt.Fprintf(e.Stderr, "Try: walt help list\n")
	return ExitUsage
}
