package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
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

// The container files are checked statically on every `make test`, with or
// without Docker. The real thing (the image built, run as uid 65532 with no
// shell, its HEALTHCHECK turning healthy, the compose stack passing the
// Postman collection and stopping gracefully) is checked by
// .ci/container-check.sh in CI. What stays here is what a successful build
// and run cannot show: layer order and cache mounts, version pins, secrets
// baked into the image, optional settings the binary would silently ignore,
// and start-order and probe choices that only fail when timing is unlucky.

func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := loadDockerfile(t)
	if len(stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	final := stages[len(stages)-1]
	builder, buildRun := dfGoBuild(stages)

	t.Run("parses without a registry", func(t *testing.T) {
		// Parser directives are comments at the very top; `syntax` makes
		// BuildKit pull a frontend image before it reads anything else.
		for i, line := range strings.Split(string(src), "\n") {
			if m := regexp.MustCompile(`(?i)^#\s*syntax\s*=`).FindString(line); m != "" {
				t.Errorf("line %d: %q needs a registry to parse the file; the built-in frontend does the job", i+1, line)
			}
		}
	})

	t.Run("base images are build arguments defaulting to the official ones", func(t *testing.T) {
		if builder == nil {
			t.Fatal("no stage RUNs `go build`")
		}
		for _, c := range []struct {
			st   *dfStage
			want string // the official repository the default must name
		}{{builder, "golang"}, {&final, "gcr.io/distroless/static-debian12"}} {
			if c.st.arg == "" {
				t.Errorf("FROM %s is not a build argument; CI builds with local stand-ins and needs to swap it", c.st.image)
				continue
			}
			repo, tag := dockerImageTag(c.st.image)
			if repo != c.want || tag == "" || tag == "latest" {
				t.Errorf("ARG %s defaults to %q; want a pinned tag of the official %s", c.st.arg, c.st.image, c.want)
			}
		}
	})

	t.Run("builder image pinned to go.mod's toolchain", func(t *testing.T) {
		if builder == nil {
			t.Fatal("no stage RUNs `go build`")
		}
		_, tag := dockerImageTag(builder.image)
		want := goModToolchain(t)
		if got, _, _ := strings.Cut(tag, "-"); got != want {
			t.Errorf("builder image %q builds with Go %s, go.mod's toolchain is go%s (.ci/images.sh builds its stand-in from that line)", builder.image, got, want)
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
}

func TestCompose(t *testing.T) {
	cf := loadCompose(t)
	reads := envVarsRead(t)

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

	t.Run("environment names are ones the binary reads", func(t *testing.T) {
		// A misspelt optional setting (JWT_ISUER) is ignored by the binary,
		// so the stack still runs and only this check notices.
		for name, s := range ours {
			for k := range s.Environment {
				if !reads[k] {
					t.Errorf("service %s sets %s, which the binary never reads (it reads %s)", name, k, dockerKeys(reads))
				}
			}
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
		// A stack whose requests ran as the database owner would pass every
		// real check; only this one sees it. The strict setup (SECURITY.md): MIGRATION_DATABASE_URL is the db
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
	arg         string // the build argument FROM named, if any; image is its default
	instrs      []dfInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions. It handles
// comments (including those inside continued instructions), backslash
// continuations and FROM ${ARG} with a global ARG default, which is all this
// repository's Dockerfile uses (no heredocs, no escape directive).
func parseDockerfile(src string) ([]dfStage, error) {
	var (
		stages []dfStage
		cur    strings.Builder
		start  int
		global = map[string]string{} // ARG defaults before the first FROM
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
			if m := regexp.MustCompile(`^\$\{?(\w+)\}?$`).FindStringSubmatch(f[0]); m != nil {
				def, ok := global[m[1]]
				if !ok || def == "" {
					return fmt.Errorf("line %d: FROM %s has no global ARG default", start, f[0])
				}
				st.image, st.arg = def, m[1]
			}
			if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" { // global ARG before the first FROM
				for _, w := range dfWords(in.args) {
					k, v, _ := strings.Cut(w, "=")
					global[k] = v
				}
				return nil
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

// dockerImageTag splits "registry/repo:tag@digest" into repo and tag.
func dockerImageTag(ref string) (repo, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// goModToolchain is the release go.mod's toolchain line names (1.26.8).
func goModToolchain(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^toolchain\s+go(\d+\.\d+\.\d+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no `toolchain goX.Y.Z` line; the image builds pin the exact release from it")
	}
	return string(m[1])
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

// ---- the binary's commands, from its command table ----

// TestContainerRunsCommandsTheBinaryHas checks every place the container
// files name a subcommand (the image's CMD and HEALTHCHECK, each compose
// service's command and the app's healthcheck) against the commands table
// that run dispatches on, so renaming a command fails here, without Docker,
// rather than in a deployed stack.
func TestContainerRunsCommandsTheBinaryHas(t *testing.T) {
	known := map[string]bool{}
	for _, c := range commands {
		known[c.name] = true
	}
	check := func(where string, argv []string, i int) {
		t.Helper()
		if len(argv) <= i {
			t.Errorf("%s %q names no subcommand", where, argv)
		} else if !known[argv[i]] {
			t.Errorf("%s runs %q, which is not a command of the binary (it has %s)", where, argv[i], dockerKeys(known))
		}
	}
	stages := loadDockerfile(t)
	final := stages[len(stages)-1]
	execForm := func(cmd string) []string {
		for _, in := range final.instrs {
			if in.cmd != cmd {
				continue
			}
			rest := dfStripFlags(in.args)
			if cmd == "HEALTHCHECK" {
				rest = strings.TrimSpace(strings.TrimPrefix(rest, "CMD"))
			}
			var argv []string
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				t.Fatalf("line %d: %s %s is not exec form (the image has no shell): %v", in.line, cmd, in.args, err)
			}
			return argv
		}
		t.Fatalf("the final stage has no %s", cmd)
		return nil
	}
	check("Dockerfile CMD", execForm("CMD"), 0)
	check("Dockerfile HEALTHCHECK", execForm("HEALTHCHECK"), 1)
	cf := loadCompose(t)
	for name, s := range cf.Services {
		if !s.Build.IsZero() {
			check("compose service "+name, s.Command.argv, 0)
		}
	}
	check("compose app healthcheck", cf.Services["app"].Healthcheck.Test.argv, 2)
}
