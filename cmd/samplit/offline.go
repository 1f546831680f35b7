package main

import "github.com/samplit/samplit/internal/offline"

// The offline commands need no server or database.
var (
	analyzeFunc  = offline.Analyze
	simulateFunc = offline.Simulate
)
