package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The container files are checked statically: this machine has no Docker
// engine, so the image is never built here. The checks tie the Dockerfile and
// docker-compose.yml to what the binary really accepts (subcommands and
// environment variables read from the Go source) and to go.mod.

func TestDockerfile(t *testing.T) {
	stages := loadDockerfile(t)
	subs := binarySubcommands(t)

	t.Run("multi-stage build", func(t *testing.T) {
		if len(stages) < 2 {
			t.Fatalf("Dockerfile has %d FROM stage(s); want a builder stage and a separate runtime stage", len(stages))
		}
	})
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	final := stages[len(stages)-1]
	builder, buildRun := dfGoBuild(stages)

	t.Run("builder image pinned to go.mod's Go version", func(t *testing.T) {
		if builder == nil {
			t.Fatal("no stage RUNs `go build`")
		}
		repo, tag := dockerImageTag(builder.image)
		if !strings.HasSuffix(repo, "golang") {
			t.Errorf("builder image %q is not the golang image", builder.image)
		}
		m := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-|$)`).FindStringSubmatch(tag)
		if tag == "" || tag == "latest" || m == nil {
			t.Fatalf("builder image %q is not pinned to an exact Go release (want e.g. golang:1.26.8-bookworm)", builder.image)
		}
		want := goModMinorVersion(t)
		if got := m[1] + "." + m[2]; got != want {
			t.Errorf("builder image %q builds with Go %s, go.mod says go %s", builder.image, got, want)
		}
	})

	t.Run("modules downloaded before the source is copied", func(t *testing.T) {
		if builder == nil {
			t.Fatal("no stage RUNs `go build`")
		}
		copyMod, download, copyAll := -1, -1, -1
		for i, in := range builder.instrs {
			switch {
			case in.cmd == "COPY" && copyMod < 0 && slices.Contains(strings.Fields(in.args), "go.mod") && slices.Contains(strings.Fields(in.args), "go.sum"):
				copyMod = i
			case in.cmd == "RUN" && download < 0 && strings.Contains(in.args, "go mod download"):
				download = i
			case in.cmd == "COPY" && copyAll < 0 && dfCopiesAll(in.args):
				copyAll = i
			}
		}
		if copyMod < 0 || download < 0 || copyAll < 0 || !(copyMod < download && download < copyAll) {
			t.Errorf("builder stage should COPY go.mod go.sum, RUN go mod download, then COPY . . (found them at instructions %d, %d, %d; -1 = missing), so a source change keeps the module layer", copyMod, download, copyAll)
		}
	})

	t.Run("static trimmed build with cache mounts", func(t *testing.T) {
		if buildRun == nil {
			t.Fatal("no stage RUNs `go build`")
		}
		cgoOff := strings.Contains(buildRun.args, "CGO_ENABLED=0")
		for _, in := range builder.instrs {
			if in.cmd == "ENV" && dfEnv(in.args)["CGO_ENABLED"] == "0" {
				cgoOff = true
			}
		}
		if !cgoOff {
			t.Errorf("line %d: go build without CGO_ENABLED=0; the distroless static image has no libc", buildRun.line)
		}
		if !strings.Contains(buildRun.args, "-trimpath") {
			t.Errorf("line %d: go build without -trimpath", buildRun.line)
		}
		for _, target := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
			if !regexp.MustCompile(`--mount=type=cache,(\S*,)?target=` + regexp.QuoteMeta(target) + `(,|\s)`).MatchString(buildRun.args) {
				t.Errorf("line %d: go build has no BuildKit cache mount for %s", buildRun.line, target)
			}
		}
	})

	t.Run("final stage is distroless static or scratch", func(t *testing.T) {
		if final.image == "scratch" {
			return
		}
		repo, tag := dockerImageTag(final.image)
		if !strings.HasPrefix(repo, "gcr.io/distroless/static") {
			t.Fatalf("final stage FROM %q; want gcr.io/distroless/static-* or scratch (no shell, no package manager)", final.image)
		}
		if tag == "" || tag == "latest" {
			t.Errorf("final stage FROM %q is not pinned to a tag", final.image)
		}
	})

	t.Run("final stage runs as a non-root user", func(t *testing.T) {
		user := dfLast(final, "USER")
		if user == nil {
			t.Fatal("final stage has no USER instruction; set it explicitly (e.g. USER nonroot:nonroot)")
		}
		name, group, _ := strings.Cut(strings.TrimSpace(user.args), ":")
		for _, id := range []string{name, group} {
			if id == "root" || id == "0" {
				t.Errorf("line %d: USER %s runs as root", user.line, user.args)
			}
		}
	})

	entrypoint := dfEntrypoint(t, final)

	t.Run("ENTRYPOINT is exec form and runs the copied binary", func(t *testing.T) {
		if entrypoint == nil {
			t.Fatal("final stage has no exec-form ENTRYPOINT (JSON array); shell form needs /bin/sh and keeps the binary from being PID 1")
		}
		if dests := dfCopiedFrom(final); !slices.Contains(dests, entrypoint[0]) {
			t.Errorf("ENTRYPOINT runs %q, but the final stage copies %v from the builder", entrypoint[0], dests)
		}
	})

	t.Run("CMD is exec form and a subcommand", func(t *testing.T) {
		cmd := dfLast(final, "CMD")
		if cmd == nil {
			t.Fatal("final stage has no CMD")
		}
		argv, ok := dfExecForm(cmd.args)
		if !ok || len(argv) == 0 {
			t.Fatalf("line %d: CMD %s is not exec form (JSON array)", cmd.line, cmd.args)
		}
		if !subs[argv[0]] {
			t.Errorf("line %d: CMD %q is not a subcommand of the binary (it accepts %s)", cmd.line, argv[0], dockerKeys(subs))
		}
	})

	t.Run("HEALTHCHECK is exec form and a subcommand", func(t *testing.T) {
		hc := dfLast(final, "HEALTHCHECK")
		if hc == nil {
			t.Fatal("final stage has no HEALTHCHECK")
		}
		rest := dfStripFlags(hc.args)
		after, isCmd := strings.CutPrefix(rest, "CMD")
		argv, ok := dfExecForm(after)
		if !isCmd || !ok || len(argv) < 2 {
			t.Fatalf("line %d: HEALTHCHECK %s is not `CMD [\"/binary\", \"subcommand\"]`; the image has no shell for the shell form", hc.line, hc.args)
		}
		if entrypoint != nil && argv[0] != entrypoint[0] {
			t.Errorf("line %d: HEALTHCHECK runs %q, the ENTRYPOINT is %q", hc.line, argv[0], entrypoint[0])
		}
		if !subs[argv[1]] {
			t.Errorf("line %d: HEALTHCHECK subcommand %q is not one the binary accepts (%s)", hc.line, argv[1], dockerKeys(subs))
		}
	})

	t.Run("no secret in ENV or ARG", func(t *testing.T) {
		for _, st := range stages {
			for _, in := range st.instrs {
				var names []string
				switch in.cmd {
				case "ENV":
					for k := range dfEnv(in.args) {
						names = append(names, k)
					}
				case "ARG":
					for _, f := range strings.Fields(in.args) {
						k, _, _ := strings.Cut(f, "=")
						names = append(names, k)
					}
				}
				for _, n := range names {
					if dockerSecretName.MatchString(n) {
						t.Errorf("line %d: %s %s bakes a secret-looking variable into the image; pass it at run time", in.line, in.cmd, n)
					}
				}
			}
		}
	})

	t.Run("EXPOSE matches ADDR", func(t *testing.T) {
		addr := dfStageEnv(final)["ADDR"]
		if addr == "" {
			addr = loadConfig(func(string) string { return "" }).addr // the binary's default
		}
		port := dockerPort(t, addr)
		exposed := dfExposed(final)
		if !slices.Contains(exposed, port) {
			t.Errorf("ADDR %q listens on %s, but the image EXPOSEs %v", addr, port, exposed)
		}
	})
}

func TestCompose(t *testing.T) {
	cf := loadCompose(t)
	subs := binarySubcommands(t)
	reads := envVarsRead(t)
	stages := loadDockerfile(t)
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	final := stages[len(stages)-1]
	entrypoint := dfEntrypoint(t, final)

	for _, name := range []string{"db", "migrate", "app"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %q service (has %s)", name, dockerKeys(cf.Services))
		}
	}
	db, migrate, app := cf.Services["db"], cf.Services["migrate"], cf.Services["app"]
	// Services built from this repository run the tenantry binary.
	ours := map[string]composeService{}
	for name, s := range cf.Services {
		if !s.Build.IsZero() {
			ours[name] = s
		}
	}

	t.Run("commands are subcommands of the binary", func(t *testing.T) {
		for _, name := range []string{"migrate", "app"} {
			if _, ok := ours[name]; !ok {
				t.Errorf("service %s is not built from this repository (no build:)", name)
			}
		}
		for name, s := range ours {
			if len(s.Command.argv) == 0 {
				t.Errorf("service %s has no command; give it one explicitly", name)
				continue
			}
			if !subs[s.Command.argv[0]] {
				t.Errorf("service %s: command %q is not a subcommand of the binary (it accepts %s)", name, s.Command.argv[0], dockerKeys(subs))
			}
		}
	})

	t.Run("app healthcheck runs the binary's healthcheck subcommand", func(t *testing.T) {
		test := app.Healthcheck.Test.argv
		if len(test) < 3 || test[0] != "CMD" {
			t.Fatalf("app healthcheck test %q: want exec form [\"CMD\", \"/binary\", \"healthcheck\"]; the image has no shell for CMD-SHELL", test)
		}
		if entrypoint != nil && test[1] != entrypoint[0] {
			t.Errorf("app healthcheck runs %q, the image's ENTRYPOINT is %q", test[1], entrypoint[0])
		}
		if !subs[test[2]] {
			t.Errorf("app healthcheck subcommand %q is not one the binary accepts (%s)", test[2], dockerKeys(subs))
		}
	})

	t.Run("environment names are ones the binary reads", func(t *testing.T) {
		for name, s := range ours {
			for k := range s.Environment {
				if !reads[k] {
					t.Errorf("service %s sets %s, which the binary never reads (it reads %s)", name, k, dockerKeys(reads))
				}
			}
		}
	})

	t.Run("published port matches ADDR and EXPOSE", func(t *testing.T) {
		addr, ok := app.Environment["ADDR"]
		if !ok {
			addr = dfStageEnv(final)["ADDR"]
		}
		port := dockerPort(t, addr)
		targets := app.containerPorts(t)
		if len(targets) == 0 {
			t.Fatal("app publishes no port")
		}
		for _, p := range targets {
			if p != port {
				t.Errorf("app publishes container port %s, but ADDR %q listens on %s", p, addr, port)
			}
		}
		if exposed := dfExposed(final); !slices.Contains(exposed, port) {
			t.Errorf("app listens on %s, the image EXPOSEs %v", port, exposed)
		}
	})

	t.Run("db healthcheck probes TCP with pg_isready", func(t *testing.T) {
		hc := db.Healthcheck
		cmd := strings.Join(hc.Test.argv, " ")
		if !strings.Contains(cmd, "pg_isready") {
			t.Fatalf("db healthcheck %q does not use pg_isready", cmd)
		}
		if !regexp.MustCompile(`(^|\s)(-h\s*|--host[=\s])127\.0\.0\.1(\s|$)`).MatchString(cmd) {
			t.Errorf("db healthcheck %q lacks -h 127.0.0.1: over the Unix socket it turns healthy while the image's init-time server still refuses TCP", cmd)
		}
		if hc.Interval == "" || hc.Retries == 0 || hc.StartPeriod == "" {
			t.Errorf("db healthcheck should set interval, retries and start_period (got %q, %d, %q)", hc.Interval, hc.Retries, hc.StartPeriod)
		}
	})

	t.Run("start order waits for readiness", func(t *testing.T) {
		if c, ok := migrate.DependsOn["db"]; !ok || c != "service_healthy" {
			t.Errorf("migrate depends_on db with condition %q; want service_healthy (a started container is not a ready database)", c)
		}
		if c, ok := app.DependsOn["migrate"]; !ok || c != "service_completed_successfully" {
			t.Errorf("app depends_on migrate with condition %q; want service_completed_successfully", c)
		}
		if migrate.Restart != "no" {
			t.Errorf("migrate restart %q; a one-shot must not restart (want \"no\")", migrate.Restart)
		}
	})

	t.Run("JWT_SECRET is required from the environment", func(t *testing.T) {
		v, ok := app.Environment["JWT_SECRET"]
		if !ok {
			t.Fatal("app has no JWT_SECRET; serve refuses to start without one")
		}
		if !regexp.MustCompile(`^\$\{JWT_SECRET:\?[^}]+\}$`).MatchString(v) {
			t.Errorf("app JWT_SECRET = %q; want \"${JWT_SECRET:?message}\" so compose stops when it is unset, never a literal or a default", v)
		}
	})

	t.Run("DATABASE_URL points at the db service", func(t *testing.T) {
		// The strict setup (SECURITY.md): MIGRATION_DATABASE_URL is the db
		// service's own user, the DDL role; DATABASE_URL the request role
		// that docker/initdb creates, on the same host and database.
		for _, name := range []string{"migrate", "app"} {
			for _, key := range []string{"DATABASE_URL", "MIGRATION_DATABASE_URL"} {
				raw, ok := cf.Services[name].Environment[key]
				if !ok {
					t.Errorf("service %s has no %s", name, key)
					continue
				}
				u, err := url.Parse(raw)
				if err != nil {
					t.Errorf("service %s %s: %v", name, key, err)
					continue
				}
				pw, _ := u.User.Password()
				if u.Hostname() != "db" || strings.TrimPrefix(u.Path, "/") != db.Environment["POSTGRES_DB"] {
					t.Errorf("service %s %s %q does not point at the db service's database", name, key, raw)
				}
				isOwner := u.User.Username() == db.Environment["POSTGRES_USER"] && pw == db.Environment["POSTGRES_PASSWORD"]
				if isOwner != (key == "MIGRATION_DATABASE_URL") {
					t.Errorf("service %s %s logs in as %q: requests must not run as the db service's owner, DDL must", name, key, u.User.Username())
				}
			}
		}
	})
}

// dockerSecretName matches variable names that must never be baked into an image.
var dockerSecretName = regexp.MustCompile(`(?i)secret|passw|token|key|credential|DATABASE_URL`)

// ---- Dockerfile ----

type dfInstr struct {
	line int    // where the instruction starts
	cmd  string // upper case
	args string // continuation lines joined, comments dropped
}

type dfStage struct {
	image, name string
	instrs      []dfInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions. It handles
// comments (including those inside continued instructions) and backslash
// continuations, which is all this repository's Dockerfile uses (no heredocs,
// no escape directive).
func parseDockerfile(src string) ([]dfStage, error) {
	var (
		stages []dfStage
		cur    strings.Builder
		start  int
	)
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := dfInstr{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(dfStripFlags(in.args))
			if len(f) == 0 {
				return fmt.Errorf("line %d: FROM without an image", start)
			}
			st := dfStage{image: f[0]}
			if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil // global ARG before the first FROM
			}
			return fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
		}
		s := &stages[len(stages)-1]
		s.instrs = append(s.instrs, in)
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(src))
	n := 0
	continuing := false
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && !continuing) {
			continue
		}
		if !continuing {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continuing = true
			continue
		}
		cur.WriteString(line)
		continuing = false
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return stages, flush()
}

func loadDockerfile(t *testing.T) []dfStage {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// dfGoBuild finds the stage and the RUN that compile the binary.
func dfGoBuild(stages []dfStage) (*dfStage, *dfInstr) {
	for i := range stages {
		for j := range stages[i].instrs {
			in := &stages[i].instrs[j]
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				return &stages[i], in
			}
		}
	}
	return nil, nil
}

func dfLast(st dfStage, cmd string) *dfInstr {
	for i := len(st.instrs) - 1; i >= 0; i-- {
		if st.instrs[i].cmd == cmd {
			return &st.instrs[i]
		}
	}
	return nil
}

// dfExecForm reports whether args is a JSON array of strings, as the exec
// form of RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD is.
func dfExecForm(args string) ([]string, bool) {
	args = strings.TrimSpace(args)
	if !strings.HasPrefix(args, "[") {
		return nil, false
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		return nil, false
	}
	return argv, true
}

func dfEntrypoint(t *testing.T, final dfStage) []string {
	t.Helper()
	ep := dfLast(final, "ENTRYPOINT")
	if ep == nil {
		return nil
	}
	argv, ok := dfExecForm(ep.args)
	if !ok || len(argv) == 0 {
		return nil
	}
	return argv
}

// dfStripFlags drops leading --flag=value words (FROM --platform, HEALTHCHECK
// --interval, RUN --mount, COPY --from).
func dfStripFlags(s string) string {
	s = strings.TrimSpace(s)
	for strings.HasPrefix(s, "--") {
		_, rest, _ := strings.Cut(s, " ")
		s = strings.TrimSpace(rest)
	}
	return s
}

func dfCopiesAll(args string) bool {
	f := strings.Fields(dfStripFlags(args))
	return len(f) >= 2 && slices.Contains(f[:len(f)-1], ".")
}

// dfCopiedFrom lists the destinations of COPY --from=... in a stage.
func dfCopiedFrom(st dfStage) []string {
	var dests []string
	for _, in := range st.instrs {
		if in.cmd == "COPY" && strings.Contains(in.args, "--from=") {
			f := strings.Fields(in.args)
			dests = append(dests, f[len(f)-1])
		}
	}
	return dests
}

// dfEnv parses ENV's KEY=value pairs (or the legacy `ENV KEY value`).
func dfEnv(args string) map[string]string {
	out := map[string]string{}
	words := dfWords(args)
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		out[words[0]] = strings.Join(words[1:], " ")
		return out
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		out[k] = v
	}
	return out
}

func dfStageEnv(st dfStage) map[string]string {
	out := map[string]string{}
	for _, in := range st.instrs {
		if in.cmd == "ENV" {
			for k, v := range dfEnv(in.args) {
				out[k] = v
			}
		}
	}
	return out
}

// dfWords splits on blanks outside single or double quotes and removes
// the quotes.
func dfWords(s string) []string {
	var (
		words []string
		w     strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

func dfExposed(st dfStage) []string {
	var ports []string
	for _, in := range st.instrs {
		if in.cmd == "EXPOSE" {
			for _, f := range strings.Fields(in.args) {
				p, _, _ := strings.Cut(f, "/")
				ports = append(ports, p)
			}
		}
	}
	return ports
}

// dockerImageTag splits "registry/repo:tag@digest" into repo and tag.
func dockerImageTag(ref string) (repo, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func dockerPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("ADDR %q has no port: %v", addr, err)
	}
	return port
}

// goModMinorVersion is go.mod's `go` line as major.minor.
func goModMinorVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go\s+(\d+)\.(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1]) + "." + string(m[2])
}

// ---- what the binary accepts, read from its source ----

// mainPackageFiles parses the non-test Go files of this package.
func mainPackageFiles(t *testing.T) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// binarySubcommands collects the string case labels of `switch cmd` in
// func run: the first word of argv the binary dispatches on.
func binarySubcommands(t *testing.T) map[string]bool {
	t.Helper()
	subs := map[string]bool{}
	for _, f := range mainPackageFiles(t) {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || fn.Name.Name != "run" || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sw, ok := n.(*ast.SwitchStmt)
				if !ok {
					return true
				}
				if id, ok := sw.Tag.(*ast.Ident); !ok || id.Name != "cmd" {
					return true
				}
				for _, s := range sw.Body.List {
					for _, e := range s.(*ast.CaseClause).List {
						if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
							v, err := strconv.Unquote(lit.Value)
							if err == nil {
								subs[v] = true
							}
						}
					}
				}
				return false
			})
		}
	}
	if len(subs) == 0 {
		t.Fatal("found no `switch cmd { case \"...\" }` in func run; docker_test.go needs updating to find the subcommands")
	}
	return subs
}

// envVarsRead collects the names passed as string literals to getenv (the
// injected lookup), os.Getenv or os.LookupEnv.
func envVarsRead(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, f := range mainPackageFiles(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name != "getenv" {
					return true
				}
			case *ast.SelectorExpr:
				pkg, ok := fn.X.(*ast.Ident)
				if !ok || pkg.Name != "os" || (fn.Sel.Name != "Getenv" && fn.Sel.Name != "LookupEnv") {
					return true
				}
			default:
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil {
					names[v] = true
				}
			}
			return true
		})
	}
	if len(names) == 0 {
		t.Fatal("found no getenv(\"...\") calls in package main; docker_test.go needs updating to find the environment variables")
	}
	return names
}

// ---- docker-compose.yml ----

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       yaml.Node      `yaml:"build"`
	Command     argvOrString   `yaml:"command"`
	Environment composeEnv     `yaml:"environment"`
	Ports       []yaml.Node    `yaml:"ports"`
	DependsOn   composeDepends `yaml:"depends_on"`
	Restart     string         `yaml:"restart"`
	Healthcheck struct {
		Test        argvOrString `yaml:"test"`
		Interval    string       `yaml:"interval"`
		StartPeriod string       `yaml:"start_period"`
		Retries     int          `yaml:"retries"`
	} `yaml:"healthcheck"`
}

// argvOrString is a compose command or healthcheck test: a list, or a string
// (split on blanks here, as compose would for a simple command).
type argvOrString struct{ argv []string }

func (a *argvOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		a.argv = strings.Fields(n.Value)
		return nil
	}
	return n.Decode(&a.argv)
}

// composeEnv is environment: as a map or as a list of KEY=value.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			(*e)[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, _ := strings.Cut(item.Value, "=")
			(*e)[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment is neither a map nor a list", n.Line)
	}
	return nil
}

// composeDepends maps a dependency to its condition ("" in the short list
// form, which only waits for the container to start).
type composeDepends map[string]string

func (d *composeDepends) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDepends{}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			(*d)[item.Value] = ""
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var v struct {
				Condition string `yaml:"condition"`
			}
			if err := n.Content[i+1].Decode(&v); err != nil {
				return err
			}
			(*d)[n.Content[i].Value] = v.Condition
		}
	default:
		return fmt.Errorf("line %d: depends_on is neither a list nor a map", n.Line)
	}
	return nil
}

// containerPorts returns the container side of each published port, from
// the short ("[ip:]host:container[/proto]") or long (target:) syntax.
func (s composeService) containerPorts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, n := range s.Ports {
		switch n.Kind {
		case yaml.ScalarNode:
			v, _, _ := strings.Cut(n.Value, "/")
			out = append(out, v[strings.LastIndex(v, ":")+1:])
		case yaml.MappingNode:
			var long struct {
				Target string `yaml:"target"`
			}
			if err := n.Decode(&long); err != nil {
				t.Fatalf("ports line %d: %v", n.Line, err)
			}
			out = append(out, long.Target)
		}
	}
	return out
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return cf
}

func dockerKeys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}
