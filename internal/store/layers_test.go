package store

import "testing"

func TestFitRange(t *testing.T) {
	held := []LayerRange{{From: 5000, To: 7000}, {From: 0, To: 2000}}
	tests := []struct {
		size     int64
		from, to int64
		ok       bool
		name     string
	}{
		{3000, 2000, 5000, true, "the gap between"},
		{3001, 0, 0, false, "larger than every gap"},
		{2000, 2000, 4000, true, "first fit"},
		{LayerSlots, 0, 0, false, "the whole layer"},
		{0, 0, 0, false, "nothing"},
		{1, 2000, 2001, true, "one slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to, ok := FitRange(held, tt.size)
			if from != tt.from || to != tt.to || ok != tt.ok {
				t.Errorf("FitRange(%d) = %d, %d, %v; want %d, %d, %v", tt.size, from, to, ok, tt.from, tt.to, tt.ok)
			}
		})
	}
	if from, to, ok := FitRange([]LayerRange{{From: 0, To: 2000}, {From: 2000, To: 7000}}, 3000); !ok || from != 7000 || to != 10000 {
		t.Errorf("the gap at the end: %d, %d, %v", from, to, ok)
	}
	if from, to, ok := FitRange(nil, LayerSlots); !ok || from != 0 || to != LayerSlots {
		t.Errorf("an empty layer: %d, %d, %v", from, to, ok)
	}
}
