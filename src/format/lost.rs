//! The `LOST` file of a log: sequence ranges a salvage gave up on, so reads skip them on
//! purpose instead of failing on the gap. JSON: `{"lost":[[start,end],...]}`, each range
//! half-open, written atomically by `weir salvage`.

use serde::{Deserialize, Serialize};

use super::DecodeError;

/// File name of the lost-ranges file inside a log directory.
pub const LOST_FILE: &str = "LOST";

/// Ranges of sequence numbers known lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRanges {
    /// Half-open `[start, end)` ranges.
    pub lost: Vec<(u64, u64)>,
}

impl LostRanges {
    /// Encodes as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes, rejecting reversed ranges.
    pub fn decode(bytes: &[u8]) -> Result<LostRanges, DecodeError> {
        let ranges: LostRanges =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::new(0, format!("LOST file: {e}")))?;
        if ranges.lost.iter().any(|(s, e)| s > e) {
            return Err(DecodeError::new(0, "LOST file: a range ends before it starts"));
        }
        Ok(ranges)
    }

    /// True if every sequence number in `[start, end)` lies in a lost range.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut ranges = self.lost.clone();
        ranges.sort_unstable();
        let mut at = start;
        for (s, e) in ranges {
            if at >= end {
                break;
            }
            if s <= at && e > at {
                at = e;
            }
        }
        at >= end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_only_fully_lost_ranges() {
        let l = LostRanges { lost: vec![(10, 20), (20, 25), (30, 40)] };
        assert!(l.covers(12, 25));
        assert!(!l.covers(12, 26));
        assert!(!l.covers(5, 12));
        assert!(l.covers(30, 30));
        assert_eq!(LostRanges::decode(&l.encode()), Ok(l));
        assert!(LostRanges::decode(b"{\"lost\":[[5,1]]}").is_err());
    }
}
