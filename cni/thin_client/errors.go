package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// CNI error codes the client itself reports (cni/errors.py has the full list).
const (
	codeIOFailure     = 5
	codeDecodeFailure = 6
	codeInvalidConfig = 7
	codeTryAgainLater = 11
)

// cniError is an error in the CNI spec's shape: a code, msg and details.
type cniError struct {
	code    int
	msg     string
	details string
}

// json is the error document the runtime reads on stdout, in the field order and
// separators of the Python client's (cni.errors.CNIError.to_json).
func (e *cniError) json(cniVersion string) string {
	text := fmt.Sprintf(`{"cniVersion": %s, "code": %d, "msg": %s`,
		jsonString(cniVersion), e.code, jsonString(e.msg))
	if e.details != "" {
		text += `, "details": ` + jsonString(e.details)
	}
	return text + "}"
}

func jsonString(s string) string {
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(s) // a string always encodes
	return strings.TrimSuffix(buffer.String(), "\n")
}

// pyRepr quotes a path as Python's repr does for ordinary strings ('…'), so messages
// read the same from both clients; anything unusual is quoted Go's way.
func pyRepr(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\'' || r == '\\' || r > 0x7e {
			return fmt.Sprintf("%q", s)
		}
	}
	return "'" + s + "'"
}
