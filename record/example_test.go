package record_test

import (
	"errors"
	"fmt"

	"github.com/custodylog/custody/record"
)

func ExampleDecode() {
	e, err := record.Decode([]byte(`{ "action": "transferred", "sample": "s-7f3a", "region": "EU",
	  "time": "2024-05-01T14:00:00.25+02:00", "location": "de-fra-1",
	  "to": "ch-zrh-1", "actor": "mover/2.1", "note": "caf\u00e9 \"A\"" }`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", e.Canonical())
	fmt.Printf("%x\n", e.Identity())
	// Output:
	// {"sample":"s-7f3a","action":"transferred","location":"de-fra-1","to":"ch-zrh-1","region":"EU","time":"2024-05-01T12:00:00Z","actor":"mover/2.1","note":"café \"A\""}
	// cc4333f047ed7efe82e79082f003ef9ed2e1c4e1b8c9963fd6b0290632e9297c
}

func ExampleFieldError() {
	_, err := record.Decode([]byte(`{"sample":"s-1","action":"transferred","location":"de-fra-1",` +
		`"region":"EU","time":"2024-05-01T12:00:00Z","actor":"mover"}`))
	var fe *record.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field)
	}
	fmt.Println(err)
	// Output:
	// to
	// field "to": required when action is "transferred"
}
