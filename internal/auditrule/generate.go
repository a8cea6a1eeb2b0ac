package auditrule

//go:generate go run ./internal/gentables -out .
