//go:build !race

package proxy_test

// raceEnabled: the race detector is on (see cpuBudget).
const raceEnabled = false
