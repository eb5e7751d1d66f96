//! The validated model: alarms from every sender, AWS Support case events, per-alarm
//! settings and their tags, maintenance windows, the outcomes of a delivery.

pub mod alarm;
pub mod case_event;
pub mod delivery;
pub mod documents;
pub mod maintenance;
pub mod notice;
pub mod outcome;
pub mod page;
pub mod settings;
pub mod signing;
pub mod sms_reply;
pub mod tags;
