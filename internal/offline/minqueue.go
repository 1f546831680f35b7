package offline

import "container/heap"

// minQueue is a priority queue of T, least first by less: the events of a
// simulation still to come (late conversions, units reaching a step), in
// the order of their time.
type minQueue[T any] struct {
	items []T
	less  func(a, b T) bool
}

func newMinQueue[T any](less func(a, b T) bool) *minQueue[T] {
	return &minQueue[T]{less: less}
}

func (q *minQueue[T]) push(x T) { heap.Push(q, x) }
func (q *minQueue[T]) pop() T   { return heap.Pop(q).(T) }

// peek returns the least item; the queue must not be empty.
func (q *minQueue[T]) peek() T { return q.items[0] }

// heap.Interface, for container/heap only.

func (q *minQueue[T]) Len() int           { return len(q.items) }
func (q *minQueue[T]) Less(i, j int) bool { return q.less(q.items[i], q.items[j]) }
func (q *minQueue[T]) Swap(i, j int)      { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *minQueue[T]) Push(x any)         { q.items = append(q.items, x.(T)) }
func (q *minQueue[T]) Pop() any {
	last := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return last
}
