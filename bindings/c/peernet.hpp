#pragma once
#include "peernet.h"
