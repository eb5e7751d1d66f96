//! Who is on duty (issue 26): people, schedules of layered rotations with active windows and
//! overrides, and the answer to "who is on duty at this instant, and until when". Times are
//! local to the schedule's zone: a hand-over keeps its local time through daylight-saving
//! changes (a time that does not exist moves to the first valid instant; one that happens
//! twice counts once, at the first).
//!
//! `model` holds the validated types; `resolve` decides, as plain code over them.

pub mod feed;
pub mod file;
pub mod ical;
pub mod model;
pub mod overrides;
pub mod policy;
pub mod resolve;

pub use model::{
    ActiveWindow, ModelError, Override, Person, PersonId, PhoneNumber, Rotation, Schedule,
    ShiftLength,
};
pub use resolve::{OnDuty, Shift, on_duty, shifts};
