// Package stack runs payworker and everything it talks to as real processes
// on loopback, for chaos and benchmark programs: a nats-server with
// JetStream on disk, a redis-server with the append-only file, the Dintero
// sandbox binary and any number of payworker processes, all in one
// temporary folder.
//
// Every component can be stopped (SIGTERM, then SIGKILL), killed (SIGKILL),
// started again and restarted, keeping its port and data folder, so clients
// reconnect to the same URL. Each process writes its output to a log file in
// the folder. On Linux every child runs in its own process group and gets
// SIGKILL when the program that started it dies, so a crashed or
// interrupted run leaves nothing behind; [Stack.Stop] stops them all in the
// normal case.
//
// Typical use:
//
//	bin, err := stack.BuildBinaries(ctx, stack.BuildOptions{})
//	st, err := stack.Start(ctx, stack.Options{Binaries: bin, Workers: 3})
//	defer st.Stop()
//	// st.NATS.URL(), st.Redis.URL(), st.Sandbox.URL(), st.Workers[i].Kill() ...
package stack
