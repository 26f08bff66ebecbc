package admin

import (
	"fmt"

	"github.com/relaystation/relay/domain"
	// Named money here: the login throttle has a type named budget.
	money "github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/relay"
)

// maxAllowedModels bounds a key's allowed_models.
const maxAllowedModels = 256

// BudgetInput is one money budget as an operator gives it. LimitUSD is the
// decimal text of the limit exactly as it arrived ("10", "0.1"): it is read
// here, never through a float, so a limit is stored to the nanodollar.
type BudgetInput struct {
	Window   string
	LimitUSD string
	// TimeZone is an IANA zone for day, week and month; "" is the relay's
	// default.
	TimeZone string
}

// parseBudgets reads and checks a key's budgets (money.ValidateList).
func parseBudgets(in []BudgetInput) ([]money.Budget, error) {
	if len(in) > money.MaxBudgets {
		return nil, domain.Invalidf("a key may carry at most %d budgets, got %d", money.MaxBudgets, len(in))
	}
	bs := make([]money.Budget, len(in))
	for i, b := range in {
		limit, err := domain.ParseUSD(b.LimitUSD)
		if err != nil {
			msg := err.Error()
			if de := domain.AsError(err); de != nil {
				msg = de.Message
			}
			return nil, &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonAmount, Err: err,
				Message: fmt.Sprintf("budgets[%d].limit_usd: %s; give a plain decimal amount of USD with at most 9 decimals, no sign or exponent", i, msg)}
		}
		bs[i] = money.Budget{Window: money.Window(b.Window), Limit: limit, TimeZone: b.TimeZone}
	}
	if err := money.ValidateList(bs); err != nil {
		return nil, err
	}
	return bs, nil
}

// parseModels checks a key's allowed_models (relay.ValidModelPattern) and
// drops repeats, keeping the first of each.
func parseModels(in []string) ([]string, error) {
	if len(in) > maxAllowedModels {
		return nil, domain.Invalidf("allowed_models may hold at most %d entries", maxAllowedModels)
	}
	seen := make(map[string]bool, len(in))
	var out []string
	for _, p := range in {
		if err := relay.ValidModelPattern(p); err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
