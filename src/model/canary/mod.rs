//! Canary changes: the steps an operator writes, what each step moves, and
//! the analysis that decides, during a pause, whether the canary hosts may go
//! on. Pure rules over plain data.

mod analyse;
mod judge;
mod steps;

pub use analyse::analyse;
pub use judge::*;
pub use steps::*;

#[cfg(test)]
mod tests;
