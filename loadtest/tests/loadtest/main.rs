//! Every scenario at a tiny size against an in-process Gantry (gantry-testkit): the harness must
//! count, wait and check correctly, and its reports must have the documented shape.

mod containers;
mod helpers;
mod services;
