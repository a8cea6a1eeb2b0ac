package policy

//go:generate go test -run TestEmbeddedDefaultIsGenerated -update .
