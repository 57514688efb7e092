//go:build unix

// Package docs holds the guides' tests: each guide (README.md,
// auditor-guide.md, regulator-guide.md, witness-guide.md, site-signing.md) has a walkthrough
// script in docs/walkthrough that runs every command the guide shows, in
// the guide's order, against a freshly built custody, and asserts the
// documented exit codes and key output lines. A guide that drifts from the
// code, or from its walkthrough, fails these tests.
//
//	go test ./docs                               # all guides
//	go test ./docs -run 'TestWalkthroughs/witness' -v
package docs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// walkthrough ties a guide to the script that follows it.
type walkthrough struct {
	name   string   // subtest name
	guide  string   // the guide, relative to the repository root
	script string   // its walkthrough, relative to the repository root
	ports  []string // environment variables the guide names for free addresses (host:port)
}

var walkthroughs = []walkthrough{
	{"README", "README.md", "docs/walkthrough/README.sh", []string{"ADDR"}},
	{"auditor", "docs/auditor-guide.md", "docs/walkthrough/auditor.sh", []string{"ADDR", "WADDR"}},
	{"regulator", "docs/regulator-guide.md", "docs/walkthrough/regulator.sh", []string{"ADDR"}},
	{"witness", "docs/witness-guide.md", "docs/walkthrough/witness.sh", []string{"ADDR", "WADDR"}},
	{"site-signing", "docs/site-signing.md", "docs/walkthrough/site-signing.sh", []string{"ADDR"}},
}

// repoRoot is the repository's root: the tests run in docs/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: run the test from docs/ (go test ./docs): %v", root, err)
	}
	return root
}

// TestGuidesMatchWalkthroughs checks that every command a guide shows is
// run, in the guide's order, by its walkthrough, and that every exit code
// the guide shows (`$ echo $?`) is asserted there. It needs no binary.
func TestGuidesMatchWalkthroughs(t *testing.T) {
	root := repoRoot(t)
	for _, w := range walkthroughs {
		t.Run(w.name, func(t *testing.T) {
			guide, err := os.ReadFile(filepath.Join(root, w.guide))
			if err != nil {
				t.Fatal(err)
			}
			script, err := os.ReadFile(filepath.Join(root, w.script))
			if err != nil {
				t.Fatal(err)
			}
			cmds := guideCommands(string(guide))
			if len(cmds) < 5 {
				t.Fatalf("%s: found only %d commands; the extraction is broken", w.guide, len(cmds))
			}
			t.Logf("%s: %d commands", w.guide, len(cmds))
			for _, err := range checkWalkthrough(cmds, scriptSteps(string(script))) {
				t.Errorf("%s vs %s: %v", w.guide, w.script, err)
			}
		})
	}
}

// TestCheckerCatchesDrift shows that the check above fails when a guide and
// its walkthrough disagree: a changed flag, a missing command, commands
// out of order, an unasserted exit code.
func TestCheckerCatchesDrift(t *testing.T) {
	guide := "text\n\n```sh\ncustody init --dir d   # make it\ncustody serve --dir d &\n```\n\n" +
		"```\n$ custody audit --log L --state s\nlog …\n$ echo $?\n1\n```\n\n```json\n{\"not\": \"a command\"}\n```\n"
	good := "source lib.sh\ncustody init --dir d\ncustody serve --dir d 2> serve.log &\nup x\n" +
		"want 1 custody audit --log L --state s > out.txt\nhas out.txt '^log'\n"
	cmds := guideCommands(guide)
	if got := len(cmds); got != 3 {
		t.Fatalf("extracted %d commands from the sample guide, want 3: %+v", got, cmds)
	}
	if errs := checkWalkthrough(cmds, scriptSteps(good)); len(errs) != 0 {
		t.Fatalf("a matching walkthrough was refused: %v", errs)
	}
	for name, bad := range map[string]string{
		"changed flag":     strings.Replace(good, "--dir d\n", "--dir e\n", 1),
		"missing command":  strings.Replace(good, "custody serve --dir d 2> serve.log &\n", "", 1),
		"out of order":     "custody serve --dir d &\ncustody init --dir d\nwant 1 custody audit --log L --state s\n",
		"exit unasserted":  strings.Replace(good, "want 1 ", "", 1),
		"wrong exit":       strings.Replace(good, "want 1 ", "want 2 ", 1),
		"extra argument":   strings.Replace(good, "--state s >", "--state s --full >", 1),
		"only in a string": "echo 'custody init --dir d'\ncustody serve --dir d &\nwant 1 custody audit --log L --state s\n",
	} {
		if errs := checkWalkthrough(cmds, scriptSteps(bad)); len(errs) == 0 {
			t.Errorf("%s: the drifted walkthrough was accepted", name)
		}
	}
}

// command is one command line shown in a guide.
type command struct {
	text string // normalized: no comment, no trailing &, white space collapsed
	line int    // line number in the guide
	exit int    // the exit code the guide shows for it (`$ echo $?`), or -1
}

var fenceRe = regexp.MustCompile("^( *)```([A-Za-z0-9_-]*)")

// guideCommands returns the commands a guide shows, in order: every line of
// ```sh (bash, shell) blocks that is not a comment, and every `$ ` line of
// plain (or console) blocks, which show a command followed by its output.
// Lines ending in a backslash continue on the next line. A `$ echo $?`
// followed by a number sets the exit code of the command before it.
func guideCommands(md string) []command {
	var cmds []command
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		m := fenceRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, lang := m[1], m[2]
		shell := lang == "sh" || lang == "bash" || lang == "shell"
		transcript := lang == "" || lang == "console"
		for i++; i < len(lines); i++ {
			l := strings.TrimPrefix(lines[i], indent)
			if strings.HasPrefix(strings.TrimSpace(l), "```") {
				break
			}
			start := i + 1
			var text string
			switch {
			case shell:
				t := strings.TrimSpace(l)
				if t == "" || strings.HasPrefix(t, "#") {
					continue
				}
				text = t
			case transcript && strings.HasPrefix(l, "$ "):
				text = strings.TrimPrefix(l, "$ ")
			default:
				continue
			}
			for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
				i++
				text = strings.TrimSuffix(text, "\\") + " " + strings.TrimSpace(strings.TrimPrefix(lines[i], indent))
			}
			text = normalize(text)
			if text == "echo $?" {
				if len(cmds) > 0 && i+1 < len(lines) {
					if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(lines[i+1], indent))); err == nil {
						cmds[len(cmds)-1].exit = n
					}
				}
				continue
			}
			cmds = append(cmds, command{text: text, line: start, exit: -1})
		}
	}
	return cmds
}

// normalize strips a trailing comment and a trailing &, and collapses white
// space outside quotes.
func normalize(s string) string {
	var b strings.Builder
	var quote rune
	space := false
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || space):
			return finish(b.String())
		case r == ' ' || r == '\t':
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return finish(b.String())
}

func finish(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "&") && !strings.HasSuffix(s, "&&") {
		s = strings.TrimSpace(strings.TrimSuffix(s, "&"))
	}
	return s
}

// step is one logical line of a walkthrough script.
type step struct {
	text   string // normalized, without a leading `want N`
	want   int    // N of a leading `want N`, or -1
	exempt string // for `# guide (REASON): COMMAND` lines: REASON
	line   int
}

var (
	exemptRe = regexp.MustCompile(`^#\s*guide \((.+?)\):\s+(.*)$`)
	wantRe   = regexp.MustCompile(`^want ([0-9]+) (.*)$`)
)

// scriptSteps splits a walkthrough into its logical lines. A comment line
// `# guide (REASON): COMMAND` accounts for a guide command the walkthrough
// does not run as such (the test does it, or it cannot run here), with the
// reason; the test output lists them.
func scriptSteps(sh string) []step {
	var steps []step
	lines := strings.Split(sh, "\n")
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		start := i + 1
		if m := exemptRe.FindStringSubmatch(t); m != nil {
			steps = append(steps, step{text: normalize(m[2]), want: -1, exempt: m[1], line: start})
			continue
		}
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		for strings.HasSuffix(t, "\\") && i+1 < len(lines) {
			i++
			t = strings.TrimSuffix(t, "\\") + " " + strings.TrimSpace(lines[i])
		}
		s := step{text: normalize(t), want: -1, line: start}
		if m := wantRe.FindStringSubmatch(s.text); m != nil {
			s.want, _ = strconv.Atoi(m[1])
			s.text = m[2]
		}
		steps = append(steps, s)
	}
	return steps
}

// runs reports whether the script step runs the guide command cmd: the same
// text, optionally followed by redirections, a pipe or a list operator.
func runs(s step, cmd string) bool {
	if s.text == cmd {
		return true
	}
	if s.exempt != "" || !strings.HasPrefix(s.text, cmd+" ") {
		return false
	}
	rest := s.text[len(cmd)+1:]
	for _, p := range []string{">", "2>", "&>", "|", ";", "&&", "||"} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// checkWalkthrough matches the guide's commands, in order, to the script's
// steps and returns every mismatch.
func checkWalkthrough(cmds []command, steps []step) []error {
	var errs []error
	next := 0
	for _, c := range cmds {
		found := -1
		for j := next; j < len(steps); j++ {
			if runs(steps[j], c.text) || steps[j].exempt != "" && steps[j].text == c.text {
				found = j
				break
			}
		}
		if found < 0 {
			errs = append(errs, fmt.Errorf("guide line %d is not run by the walkthrough after its line %d: %s", c.line, lineOf(steps, next), c.text))
			continue
		}
		s := steps[found]
		next = found + 1
		switch {
		case s.exempt != "":
		case c.exit > 0 && s.want != c.exit:
			errs = append(errs, fmt.Errorf("guide line %d shows exit code %d, but walkthrough line %d does not assert it (write it as `want %d …`): %s", c.line, c.exit, s.line, c.exit, c.text))
		case c.exit == 0 && s.want > 0:
			errs = append(errs, fmt.Errorf("guide line %d shows exit code 0, walkthrough line %d expects %d: %s", c.line, s.line, s.want, c.text))
		}
	}
	return errs
}

func lineOf(steps []step, i int) int {
	if i == 0 || i > len(steps) {
		return 0
	}
	return steps[i-1].line
}

// TestWalkthroughs builds custody and runs every guide's walkthrough in a
// scratch directory: custody on PATH (and as ./custody), the repository's
// testdata/ and scripts/ linked in, free addresses in the variables the
// guide names, XDG_CONFIG_HOME in the scratch directory. Each walkthrough's
// processes are killed when it ends, also on failure.
func TestWalkthroughs(t *testing.T) {
	root := repoRoot(t)
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "perl", "sha256sum", "base64", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the guides use %s, which is not on PATH: install it (e.g. apt-get install -y %s)", tool, tool)
		}
	}
	goEnv := goEnvironment(t)
	bin := t.TempDir()
	start := time.Now()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "custody"), ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -o custody . in %s: %v\n%s", root, err, out)
	}
	t.Logf("built custody in %v", time.Since(start).Round(time.Millisecond))
	addrs := freeAddrs(t, walkthroughs)
	for _, w := range walkthroughs {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			runWalkthrough(t, root, bin, goEnv, w, addrs[w.name])
		})
	}
}

// freeAddrs picks a distinct free loopback address for every port variable
// of every walkthrough: all are listened on at once, then released, so the
// walkthroughs (which run in parallel) never get the same one.
func freeAddrs(t *testing.T, ws []walkthrough) map[string][]string {
	addrs := map[string][]string{}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, w := range ws {
		for range w.ports {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
			addrs[w.name] = append(addrs[w.name], l.Addr().String())
		}
	}
	return addrs
}

// goEnvironment returns the go command's settings, so that a walkthrough
// that runs go keeps them although XDG_CONFIG_HOME moves.
func goEnvironment(t *testing.T) []string {
	out, err := exec.Command("go", "env", "-json", "GOENV", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go env -json: %v", err)
	}
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	// The regulator guide builds a throwaway program with golang.org/x/mod
	// at custody's version: the module cache has it (custody's build
	// verified it against custody's go.sum), so the program's new go.sum
	// needs no checksum-database lookup, and the walkthrough no network.
	return append(env, "GOSUMDB=off")
}

func runWalkthrough(t *testing.T, root, bin string, goEnv []string, w walkthrough, addrs []string) {
	scratch := t.TempDir()
	for _, l := range []string{"testdata", "scripts"} {
		if err := os.Symlink(filepath.Join(root, l), filepath.Join(scratch, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(filepath.Join(bin, "custody"), filepath.Join(scratch, "custody")); err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile(filepath.Join(root, w.guide))
	if err != nil {
		t.Fatal(err)
	}
	for i, prog := range goBlocks(string(guide)) {
		if err := os.WriteFile(filepath.Join(scratch, fmt.Sprintf("guide-program-%d.go", i+1)), []byte(prog), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(scratch, ".config")
	env := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + scratch,
		"XDG_CONFIG_HOME=" + config,
		"CUSTODY_SRC=" + root,
		"LC_ALL=C",
	}
	env = append(env, goEnv...)
	var ports []string
	for i, p := range w.ports {
		env = append(env, p+"="+addrs[i])
		ports = append(ports, p+"="+addrs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, w.script))
	cmd.Dir, cmd.Env = scratch, env
	// Its own process group, so that every server it started dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	elapsed := time.Since(start).Round(time.Millisecond)
	// Whatever the walkthrough left running (it stops its servers itself,
	// also when it fails) dies now; none may survive.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if !groupGone(cmd.Process.Pid, 5*time.Second) {
		t.Errorf("processes of %s's group %d are still running after SIGKILL", w.script, cmd.Process.Pid)
	}
	if err != nil || testing.Verbose() {
		t.Logf("%s with %s (%v):\n%s", w.script, strings.Join(ports, " "), elapsed, tail(out.String(), 200))
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within 2 minutes", w.script)
	}
	if err != nil {
		t.Fatalf("%s failed: %v (its output is above)", w.script, err)
	}
	if !strings.Contains(out.String(), "WALKTHROUGH OK") {
		t.Fatalf("%s exited 0 without reaching its end (no WALKTHROUGH OK)", w.script)
	}
	if _, err := os.Stat(filepath.Join(config, "custody")); err == nil {
		t.Errorf("%s wrote under the user config dir (%s): a guide runs audit without --state", w.script, filepath.Join(config, "custody"))
	}
	t.Logf("%s: %v", w.script, elapsed)
	for _, s := range scriptSteps(mustRead(t, filepath.Join(root, w.script))) {
		if s.exempt != "" {
			t.Logf("not run as shown (%s): %s", s.exempt, s.text)
		}
	}
}

// groupGone waits until no process is left in process group pgid.
func groupGone(pgid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goBlocks returns the guide's ```go blocks.
func goBlocks(md string) []string {
	var blocks []string
	sc := bufio.NewScanner(strings.NewReader(md))
	var cur *strings.Builder
	for sc.Scan() {
		l := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(l, "```go"):
			cur = &strings.Builder{}
		case cur != nil && strings.HasPrefix(l, "```"):
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	return blocks
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[… %d lines]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "\n")
}
