//! Pure rules: ids, points, money and currencies, proration, cycles, plans, add-ons, limits.
//! No AWS, Stripe or HTTP types in here.

// Numbers from outside (amounts, quantities, timestamps) are combined only with checked
// arithmetic; test code, exercising generated values, is exempt.
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]

pub mod amount;
pub mod autotopup;
pub mod brand;
pub mod card;
pub mod catalog;
pub mod clock;
pub mod cycle;
pub mod floors;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod payment;
pub mod points;
pub mod proration;
pub mod renewal;
pub mod statement;
pub mod stripe_ids;
pub mod subscription;
pub mod topup;
pub mod usage;
pub mod workspace;

pub use amount::*;
pub use autotopup::*;
pub use brand::*;
pub use card::*;
pub use catalog::*;
pub use clock::*;
pub use cycle::*;
pub use floors::*;
pub use ids::*;
pub use ledger::*;
pub use money::*;
pub use payment::*;
pub use points::*;
pub use proration::*;
pub use renewal::*;
pub use statement::*;
pub use subscription::*;
pub use topup::*;
pub use usage::*;
pub use workspace::*;
