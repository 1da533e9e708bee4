// Names of suggestion kinds.
#include "orchestrator/search/carbs.h"

namespace scaletune::search {

const char* kind_name(SuggestionKind kind) {
  switch (kind) {
    case SuggestionKind::kRandom:
      return "random";
    case SuggestionKind::kBayes:
      return "bo";
    case SuggestionKind::kResample:
      return "resample";
    case SuggestionKind::kFallback:
      return "fallback";
    case SuggestionKind::kTrend:
      return "trend";
  }
  return "?";
}

}  // namespace scaletune::search
