//! Size presets: every scenario's counts for a tiny (tests), small or medium (bench) run.

use clap::ValueEnum;

use crate::scenarios::chain::ChainParams;
use crate::scenarios::create::CreateParams;
use crate::scenarios::follow::FollowParams;
use crate::scenarios::lifecycle::LifecycleParams;
use crate::scenarios::props::PropsParams;
use crate::scenarios::raw::RawParams;
use crate::scenarios::results::ResultsParams;
use crate::scenarios::steps::StepsParams;

/// How big a run is; explicit counts override the preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// Seconds: for tests.
    Tiny,
    /// About a minute for a whole bench.
    Small,
    /// The bench's default: a few minutes.
    Medium,
}

impl Size {
    pub fn create(self) -> CreateParams {
        let (concurrency, count, rate, duration_secs) = match self {
            Size::Tiny => (2, 5, 20.0, 0.25),
            Size::Small => (16, 300, 500.0, 1.0),
            Size::Medium => (32, 1500, 3000.0, 1.0),
        };
        CreateParams {
            concurrency,
            count,
            rate,
            duration_secs,
        }
    }

    pub fn steps(self) -> StepsParams {
        let (changes, steps_per_change) = match self {
            Size::Tiny => (2, 2),
            Size::Small => (8, 2),
            Size::Medium => (16, 4),
        };
        StepsParams {
            changes,
            steps_per_change,
        }
    }

    pub fn chain(self) -> ChainParams {
        let (steps, singles) = match self {
            Size::Tiny => (3, 2),
            Size::Small => (40, 3),
            Size::Medium => (40, 10),
        };
        ChainParams {
            steps,
            singles,
            worker_metrics: None,
        }
    }

    pub fn lifecycle(self) -> LifecycleParams {
        let (siblings, cancels) = match self {
            Size::Tiny => (3, 1),
            Size::Small => (10, 3),
            Size::Medium => (20, 5),
        };
        LifecycleParams { siblings, cancels }
    }

    pub fn follow(self) -> FollowParams {
        let (followers, lines) = match self {
            Size::Tiny => (3, 50),
            Size::Small => (20, 500),
            Size::Medium => (100, 2000),
        };
        FollowParams { followers, lines }
    }

    pub fn props(self) -> PropsParams {
        let (clients, increments) = match self {
            Size::Tiny => (2, 3),
            Size::Small => (4, 10),
            Size::Medium => (8, 25),
        };
        PropsParams {
            clients,
            increments,
        }
    }

    pub fn results(self) -> ResultsParams {
        let results = match self {
            Size::Tiny => 3,
            Size::Small => 200,
            Size::Medium => 1000,
        };
        ResultsParams { results }
    }

    pub fn raw(self) -> RawParams {
        let (lifecycles, churn_containers, inserts, versioned) = match self {
            Size::Tiny => (2, 4, 20, 20),
            Size::Small => (5, 16, 1000, 500),
            Size::Medium => (20, 48, 5000, 2000),
        };
        RawParams {
            lifecycles,
            churn_containers,
            churn_concurrency: 8,
            inserts,
            insert_concurrency: self.create().concurrency,
            versioned,
            versioned_concurrency: 8,
        }
    }
}
