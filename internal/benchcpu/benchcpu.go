// Package benchcpu measures the CPU time a benchmark's process spends
// (user and system, all threads), which a machine shared with other work
// disturbs far less than wall-clock throughput: comparing two variants of
// the same work by CPU time per unit tells their cost apart even when the
// wall-clock rates swing with the machine's load.
package benchcpu
