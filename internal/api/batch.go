package api

import (
	"encoding/json"
	"fmt"

	"github.com/samplit/samplit/internal/apperr"
)

// batchItems returns the items of a request that holds either one item
// (first, when single) or a list, each of the list decoded as the field
// events[i]: by fast (decodeEventFast, decodeCampaignEventFast) when it
// takes the item, else by the general decoder.
func batchItems[R any](single bool, first R, events []json.RawMessage, fast func([]byte, *R) bool) ([]R, error) {
	if single {
		return []R{first}, nil
	}
	raw := make([]R, len(events))
	for i, m := range events {
		if fast(m, &raw[i]) {
			continue
		}
		if err := decodeField(m, &raw[i], fmt.Sprintf("events[%d]", i)); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// checkBatch checks each item with check. It returns the valid ones with
// their positions in the request, and the rejected ones; a single item that
// is not valid is the request's field error instead.
func checkBatch[R, E any](raw []R, single bool, check func(R) (E, *apperr.FieldError)) (valid []E, index []int, rejected []rejectedJSON, err error) {
	rejected = []rejectedJSON{}
	valid = make([]E, 0, len(raw))
	index = make([]int, 0, len(raw))
	for i, it := range raw {
		v, bad := check(it)
		if bad != nil {
			if single {
				return nil, nil, nil, apperr.Fields([]apperr.FieldError{*bad})
			}
			rejected = append(rejected, rejectedJSON{Index: i, Error: bad.Field + " " + bad.Reason})
			continue
		}
		valid = append(valid, v)
		index = append(index, i)
	}
	return valid, index, rejected, nil
}
