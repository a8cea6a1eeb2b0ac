package policy

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A policy with every list and map of the schema non-empty, so the walk below meets each.
const everyListPolicy = `
version: 1
run: {timeouts: {firewall: 1m}}
firewall:
  exposure: public
  allow:
    - {name: dns, proto: udp, port: 53, from: [10.0.0.0/8, "2001:db8::/32"], why: resolver}
    - {name: ssh, proto: tcp, port: 22, from: private, why: ssh}
kernel: {sysctl: {kernel.sysrq: "0"}, disable_modules: [dccp]}
sshd: {settings: {Banner: /etc/issue.net}}
audit: {rules: ["-w /etc/hosts -p wa -k hosts"]}
packages: {remove: [telnet], approved: ["lib*"]}
clamav: {on_access_paths: [/home], exclude_paths: [/home/big]}
services: {allow: [{name: ssh.service, why: ssh, ensure: running}]}
alerts: {sinks: [{type: journal}]}
`

// Every overlay starts from a copy of its base; a copy that shared a list or a map with the
// base would let one file's values leak into the default (or into the next file).
func TestCloneSharesNothing(t *testing.T) {
	p, err := Parse("every.yaml", []byte(everyListPolicy), nil)
	require.NoError(t, err)
	c := p.clone()
	c.source = p.source
	assert.True(t, reflect.DeepEqual(*p, c), "the copy holds the same values")
	var shared []string
	walkShared(reflect.ValueOf(*p), reflect.ValueOf(c), "policy", &shared)
	assert.Empty(t, shared, "lists or maps shared between a policy and its copy")
	var seen, schema []string
	walkKinds(reflect.ValueOf(*p), "policy", &seen)
	walkSchema(reflect.TypeOf(*p), "policy", &schema)
	assert.ElementsMatch(t, schema, seen, "the test policy fills every list and map of the schema")

	// And from the outside: changing the copy leaves the original alone.
	c.Firewall.Allow[0].From.CIDRs[0] = FlyPrivateNetwork
	c.Kernel.Sysctl["kernel.sysrq"] = "1"
	assert.Equal(t, "10.0.0.0/8", p.Firewall.Allow[0].From.CIDRs[0].String())
	assert.Equal(t, "0", p.Kernel.Sysctl["kernel.sysrq"])
}

// walkShared records every non-empty slice or map that a and b hold at the same address.
func walkShared(a, b reflect.Value, path string, out *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if a.Type().Field(i).IsExported() {
				walkShared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name, out)
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			*out = append(*out, path)
		}
		for i := 0; i < min(a.Len(), b.Len()); i++ {
			walkShared(a.Index(i), b.Index(i), path+"[]", out)
		}
	case reflect.Map:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			*out = append(*out, path)
		}
		for it := a.MapRange(); it.Next(); {
			if bv := b.MapIndex(it.Key()); bv.IsValid() {
				walkShared(it.Value(), bv, path+"{}", out)
			}
		}
	}
}

// walkKinds lists the non-empty slices and maps of v.
func walkKinds(v reflect.Value, path string, out *[]string) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walkKinds(v.Field(i), path+"."+v.Type().Field(i).Name, out)
			}
		}
	case reflect.Slice, reflect.Map:
		if v.Len() > 0 {
			*out = append(*out, path)
		}
		if v.Kind() == reflect.Slice {
			for i := 0; i < v.Len(); i++ {
				walkKinds(v.Index(i), path+"[]", out)
			}
		}
	}
}

// walkSchema lists the paths of every slice and map in the schema, as walkKinds names them.
func walkSchema(t reflect.Type, path string, out *[]string) {
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() && t.Field(i).Type.PkgPath() != "net/netip" {
				walkSchema(t.Field(i).Type, path+"."+t.Field(i).Name, out)
			}
		}
	case reflect.Slice:
		*out = append(*out, path)
		walkSchema(t.Elem(), path+"[]", out)
	case reflect.Map:
		*out = append(*out, path)
	}
}
