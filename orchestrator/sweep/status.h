// `scaletune status`: a sweep's state from its records file, while it runs or after it ended.
#pragma once

#include <string>

#include "orchestrator/store/records.h"

namespace scaletune::sweep {

// Trials done / running / failed, budget used (against the limits of the stored config) and the
// current Pareto front as a table. Reads only the snapshot it is given.
std::string format_status(const store::Records& records);

}  // namespace scaletune::sweep
