package sampleindex

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestExtension(t *testing.T) {
	root := Hash(sha256.Sum256([]byte("root")))
	line := FormatExtension(root)
	if line != "custody-sample-index SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=" {
		t.Fatalf("FormatExtension = %q", line)
	}
	if got, err := ParseExtension(line); err != nil || got != root {
		t.Fatalf("ParseExtension = %x, %v", got, err)
	}
	if got, err := FindExtension([]string{"other line", line}); err != nil || got != root {
		t.Fatalf("FindExtension = %x, %v", got, err)
	}
	if _, err := FindExtension([]string{"other"}); !errors.Is(err, ErrNoExtension) {
		t.Fatalf("FindExtension without the line = %v", err)
	}
	for _, bad := range []string{
		"", "custody-sample-index", "custody-sample-index ", line + " ", line + "=", " " + line,
		"custody-sample-index  SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=",
		"custody-sample-index SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I",
		"custody-sample-index SBNJTRN-FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=",
		"custody-sample-index SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7J=",
		"custody-sample-index\tSBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=",
		"Custody-sample-index SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I=",
	} {
		if _, err := ParseExtension(bad); !errors.Is(err, ErrMalformedExtension) {
			t.Errorf("ParseExtension(%q) = %v, want ErrMalformedExtension", bad, err)
		}
	}
	if _, err := FindExtension([]string{line, line}); !errors.Is(err, ErrMalformedExtension) {
		t.Errorf("two lines: %v", err)
	}
	if _, err := FindExtension([]string{"custody-sample-index"}); !errors.Is(err, ErrMalformedExtension) {
		t.Errorf("keyword alone: %v", err)
	}
}

// TestExtensionWithXMod signs a checkpoint carrying the index line and
// opens it with x/mod's note and tlog: the first three lines are the
// tree, the index line is an extension they leave alone.
func TestExtensionWithXMod(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	tree := tlog.Tree{N: 42, Hash: tlog.Hash(sha256.Sum256([]byte("tree")))}
	root := Hash(sha256.Sum256([]byte("map")))
	body := "example.com/log\n" + strings.TrimPrefix(string(tlog.FormatTree(tree)), "go.sum database tree\n") + FormatExtension(root) + "\n"
	msg, err := note.Sign(&note.Note{Text: body}, signer)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	got, err := tlog.ParseTree([]byte("go.sum database tree\n" + strings.Join(lines[1:], "\n") + "\n"))
	if err != nil || got != tree {
		t.Fatalf("tlog.ParseTree of the checkpoint with the index line: %v, %v", got, err)
	}
	if r, err := FindExtension(lines[3:]); err != nil || r != root {
		t.Fatalf("FindExtension = %x, %v", r, err)
	}
}
