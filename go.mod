module github.com/harden-dev/harden

go 1.26
