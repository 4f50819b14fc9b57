package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// maxMessageBytes bounds the reply, as cni.client.MAX_MESSAGE_BYTES does: a config
// with a prevResult is a few KiB; anything near 4 MiB is not a CNI message.
const maxMessageBytes = 4 * 1024 * 1024

// connectTimeout bounds the wait for a place in a full listen backlog.
const connectTimeout = 10 * time.Second

// pendingDelDir is where DELs that found no daemon wait for it, beside its socket.
const pendingDelDir = "pending-del"

// replyTimeout bounds each later step (send, each read), as the Python client's
// socket timeout does. The runtime has its own deadline; this one only keeps a wedged
// daemon from hanging ADD. A variable so that tests can link a short one in.
var replyTimeout = "120s"

// request is what the daemon reads (cni.daemon.parse_request).
type request struct {
	Env    map[string]string `json:"env"`
	Config string            `json:"config"`
}

// parseReply reads the daemon's {"exitCode": <integer>, "stdout": <string>}. Keys are
// matched exactly, as the Python client matches them (Go's decoder into a struct would
// take "ExitCode" too).
func parseReply(raw []byte) (int, string, bool) {
	var fields map[string]json.RawMessage
	var code int
	var stdout string
	if json.Unmarshal(raw, &fields) != nil || fields["exitCode"] == nil || fields["stdout"] == nil ||
		json.Unmarshal(fields["exitCode"], &code) != nil ||
		json.Unmarshal(fields["stdout"], &stdout) != nil ||
		string(fields["exitCode"]) == "null" || string(fields["stdout"]) == "null" {
		return 0, "", false
	}
	return code, stdout, true
}

// topLevel is the config document's top-level keys, each value left undecoded: the
// client reads two of them and parses the document once (an ADD's carries the previous
// plugin's whole result). A config that is not a JSON object has none; the daemon's full
// parse reports what is wrong with it.
func topLevel(raw []byte) map[string]json.RawMessage {
	var document map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &document) != nil {
		return nil
	}
	return document
}

// stringField is the key's value when it is a JSON string.
func stringField(document map[string]json.RawMessage, key string) (string, bool) {
	var value string
	raw, found := document[key]
	if !found || json.Unmarshal(raw, &value) != nil || string(raw) == "null" {
		return "", false
	}
	return value, true
}

// forward has the daemon at socketPath run one invocation (config: UTF-8 JSON): (exit
// code, stdout), or the error the runtime gets instead. No daemon there (it may be
// restarting: the runtime retries) is TRY_AGAIN_LATER, except for a DEL, which is handed
// off to the daemon's next start and succeeds; an answer that is not one is IO_FAILURE.
func forward(socketPath string, environ []string, config []byte) (int, string, *cniError) {
	env := map[string]string{}
	for _, entry := range environ {
		name, value, _ := strings.Cut(entry, "=")
		if _, seen := env[name]; strings.HasPrefix(name, "CNI_") && !seen {
			env[name] = value
		}
	}
	body, err := json.Marshal(request{Env: env, Config: string(config)})
	if err != nil {
		return 0, "", &cniError{codeIOFailure, "cannot encode the request", err.Error()}
	}
	raw, err := exchange(socketPath, body)
	if err != nil {
		if lookup(environ, "CNI_COMMAND") == "DEL" {
			if err = handOff(socketPath, body); err == nil {
				return 0, "", nil
			}
		}
		return 0, "", &cniError{codeTryAgainLater,
			"socket: no netsched-cni daemon answers at " + pyRepr(socketPath), err.Error()}
	}
	code, stdout, ok := parseReply(raw)
	if !ok {
		shown := raw
		if len(shown) > 200 {
			shown = shown[:200]
		}
		return 0, "", &cniError{codeIOFailure,
			"socket: the daemon at " + pyRepr(socketPath) + " sent no valid reply",
			fmt.Sprintf("%q", shown)}
	}
	return code, stdout, nil
}

// connect is a blocking connect with connectTimeout as its deadline (SO_SNDTIMEO), as
// the Python client's: with the daemon's listen backlog full (many pods at once) it
// waits for a place, where Go's own non-blocking dial fails at once with EAGAIN. The
// socket stays a plain blocking one (no net package, no poller): one request, one answer.
func connect(socketPath string) (int, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	deadline := syscall.NsecToTimeval(connectTimeout.Nanoseconds())
	err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &deadline)
	if err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: socketPath})
		if err != syscall.EINTR { // the Go runtime's own signals interrupt a waiting connect
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		return -1, socketError("connect", socketPath, err)
	}
	return fd, nil
}

// socketError reads as the net package's errors did ("connect unix PATH: connect: …"),
// and says "i/o timeout" when a deadline passed (SO_SNDTIMEO/SO_RCVTIMEO give EAGAIN).
func socketError(op, socketPath string, err error) error {
	if err == syscall.EAGAIN {
		return errors.New(op + " unix " + socketPath + ": i/o timeout")
	}
	return errors.New(op + " unix " + socketPath + ": " + op + ": " + err.Error())
}

// handOff leaves a DEL request for the daemon in pending-del/ beside its socket, under
// the request's SHA-256 (a repeated DEL writes the same file), written under a temporary
// name first so the daemon never reads half of it (docs/cni.md, "The thin client's
// protocol"; cni.client.hand_off is the Python client's).
func handOff(socketPath string, body []byte) error {
	directory := filepath.Join(filepath.Dir(socketPath), pendingDelDir)
	if err := os.MkdirAll(directory, 0o700); err != nil {
		return err
	}
	digest := sha256.Sum256(body)
	path := filepath.Join(directory, hex.EncodeToString(digest[:])+".json")
	temporary := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	file, err := os.OpenFile(temporary, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = file.Write(body)
	if err == nil {
		err = file.Sync()
	}
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(temporary, path)
	}
	if err != nil {
		os.Remove(temporary)
	}
	return err
}

// exchange sends one request, half-closes, and reads the reply to the end; each step
// has replyTimeout as its deadline.
func exchange(socketPath string, body []byte) ([]byte, error) {
	timeout, err := time.ParseDuration(replyTimeout)
	if err != nil {
		return nil, fmt.Errorf("replyTimeout %q: %w", replyTimeout, err)
	}
	fd, err := connect(socketPath)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	deadline := syscall.NsecToTimeval(timeout.Nanoseconds())
	for _, option := range []int{syscall.SO_SNDTIMEO, syscall.SO_RCVTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, option, &deadline); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	for len(body) > 0 {
		n, err := syscall.Write(fd, body)
		if err == syscall.EINTR { // with a timeout set, a signal interrupts even a restartable call
			continue
		}
		if err != nil {
			return nil, socketError("write", socketPath, err)
		}
		body = body[n:]
	}
	if err := syscall.Shutdown(fd, syscall.SHUT_WR); err != nil {
		return nil, socketError("shutdown", socketPath, err)
	}
	var answer []byte
	chunk := make([]byte, 65536)
	for {
		n, err := syscall.Read(fd, chunk)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, socketError("read", socketPath, err)
		}
		if n == 0 { // end of the answer
			if len(answer) == 0 { // the daemon went away (stopped, restarted) before answering
				return nil, errors.New("closed without an answer")
			}
			return answer, nil
		}
		answer = append(answer, chunk[:n]...)
		if len(answer) > maxMessageBytes {
			return nil, fmt.Errorf("more than %d bytes", maxMessageBytes)
		}
	}
}
