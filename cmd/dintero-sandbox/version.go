package main

// version is stamped at build time: go build -ldflags "-X main.version=v1.2.3"
// (make build and the Dockerfile do). -version prints it with the VCS
// revision and Go version the go command recorded.
var version = "dev"
