// The harness of the tests, benches and doc/examples in one include: processes (process.h), a private
// bus and pidnsd on it (bus.h), real clients (clients.h), time bounds (timing.h), host prerequisites
// (prerequisites.h). Tests add skip.h for reported skips.
#pragma once

#include "bus.h"
#include "clients.h"
#include "prerequisites.h"
#include "process.h"
#include "timing.h"
