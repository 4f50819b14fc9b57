// Command netsched-cni is the node-side executable of netsched-cni: a thin client that
// hands each CNI invocation to the node daemon (`netsched-cni daemon`) over the Unix
// socket its config names, and relays the daemon's answer and exit code.
//
// It does exactly what the Python thin client (cni/main.py, cni/client.py) does, as a
// static executable: a node OS without python3 (Flatcar, Talos, Bottlerocket,
// Container-Optimized OS) can run it, and it starts as the reference plugins do, where
// the Python client pays for an interpreter. The wire format and every error are the
// Python client's; docs/cni.md describes them, and tests/cni runs the kernel tests
// through both clients.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// The CNI spec versions netsched-cni speaks (cni/versions.py).
const specVersion = "1.1.0"

var supportedVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// Identity is the phrase `netsched-cni install` looks for before it removes the
// executable on uninstall; the usage text carries it, so the linker keeps it.
const identity = "netsched-cni native thin client"

const usage = "usage: netsched-cni    a CNI plugin: CNI_* variables, config on stdin\n" +
	"\n" + identity + ": forwards every call to `netsched-cni daemon` at the config's\n" +
	"\"socket\" and answers VERSION itself. The daemon and the installer are the\n" +
	"netsched image's `netsched-cni daemon` and `netsched-cni install`.\n"

func main() {
	if len(os.Args) > 1 { // a runtime passes no arguments; a person asking gets the usage
		if os.Args[1] == "-h" || os.Args[1] == "--help" {
			os.Stdout.WriteString(usage)
			os.Exit(0)
		}
		os.Stderr.WriteString(usage)
		os.Exit(2)
	}
	stdin, err := io.ReadAll(os.Stdin)
	var code int
	var output string
	if err != nil {
		failure := &cniError{codeIOFailure, "stdin: cannot read the config", err.Error()}
		code, output = 1, failure.json(specVersion)
	} else {
		code, output = invoke(os.Environ(), stdin)
	}
	if output != "" {
		os.Stdout.WriteString(output + "\n")
	}
	os.Exit(code)
}

// invoke is one plugin invocation: (exit code, stdout).
func invoke(environ []string, stdin []byte) (int, string) {
	if !utf8.Valid(stdin) { // JSON is UTF-8, and the daemon's request carries it as a string
		failure := &cniError{codeDecodeFailure, "config is not UTF-8 JSON",
			"invalid UTF-8 on stdin"}
		return 1, failure.json(specVersion)
	}
	config := topLevel(stdin)
	requested, _ := stringField(config, "cniVersion")
	version := requested
	if version == "" {
		version = specVersion
	}
	if lookup(environ, "CNI_COMMAND") == "VERSION" {
		return 0, versionReport(requested)
	}
	socketPath, ok := stringField(config, "socket")
	if !ok {
		failure := &cniError{codeInvalidConfig,
			"socket: not set, and this netsched-cni only forwards to the daemon",
			"the " + identity + " has no in-process mode"}
		return 1, failure.json(version)
	}
	code, output, failure := forward(socketPath, environ, stdin)
	if failure != nil {
		return 1, failure.json(version)
	}
	return code, output
}

// versionReport is the VERSION result: in the requested version when supported, else
// the newest; byte for byte what the Python client prints.
func versionReport(requested string) string {
	version := specVersion
	quoted := make([]string, len(supportedVersions))
	for i, supported := range supportedVersions {
		if supported == requested {
			version = requested
		}
		quoted[i] = `"` + supported + `"`
	}
	return fmt.Sprintf(`{"cniVersion": "%s", "supportedVersions": [%s]}`,
		version, strings.Join(quoted, ", "))
}

// lookup is os.Getenv over a given environment; the first entry wins, as in libc and
// in Python's os.environ.
func lookup(environ []string, key string) string {
	for _, entry := range environ {
		if name, value, found := strings.Cut(entry, "="); found && name == key {
			return value
		}
	}
	return ""
}
