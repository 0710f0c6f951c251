//! The fixed 256-word list of short codes and verification words.
//!
//! Lowercase ASCII, 3 to 8 letters, all distinct; index = byte value. Changing it
//! changes the protocol (codes and SAS words): it is part of version 1.

/// The 256 words, indexed by byte value.
pub const WORDS: [&str; 256] = [
    "acid", "acorn", "actor", "adobe", "agent", "alarm", "album", "alley", "amber", "angle",
    "ankle", "apple", "apron", "arena", "arrow", "atlas", "attic", "audio", "aunt", "autumn",
    "avocado", "badge", "bagel", "baker", "bamboo", "banana", "banjo", "barley", "basil", "basket",
    "beach", "beacon", "beaver", "bell", "berry", "bicycle", "bishop", "blanket", "blossom",
    "border", "bottle", "bracket", "branch", "bread", "brick", "bridge", "bronze", "brush",
    "bubble", "bucket", "buffalo", "bugle", "button", "cabin", "cactus", "camel", "candle",
    "canoe", "canyon", "carbon", "carpet", "carrot", "castle", "cattle", "cedar", "cello",
    "cement", "cheese", "cherry", "chess", "chimney", "cider", "cinema", "circus", "citrus",
    "clock", "cloud", "clover", "cobalt", "cocoa", "coffee", "comet", "copper", "coral", "cotton",
    "cougar", "crayon", "cricket", "crystal", "cupboard", "curtain", "cushion", "daisy", "dancer",
    "delta", "desert", "diamond", "dinner", "doctor", "dolphin", "donkey", "dragon", "drum",
    "eagle", "easel", "echo", "eclipse", "elbow", "ember", "empire", "engine", "falcon", "feather",
    "fiddle", "finch", "flame", "flute", "forest", "fossil", "fountain", "fox", "galaxy", "garden",
    "garlic", "gecko", "ginger", "giraffe", "glacier", "globe", "goblet", "gopher", "granite",
    "grape", "gravel", "guitar", "hammer", "harbor", "harp", "hazel", "helmet", "heron", "hickory",
    "honey", "hornet", "husky", "igloo", "island", "ivory", "jacket", "jaguar", "jasmine", "jelly",
    "jersey", "jigsaw", "jungle", "kayak", "kernel", "kettle", "kitten", "koala", "ladder",
    "lagoon", "lantern", "laser", "lemon", "lentil", "lily", "lizard", "lobster", "locket",
    "magnet", "mango", "maple", "marble", "meadow", "melon", "meteor", "mirror", "mitten",
    "monkey", "mosaic", "muffin", "museum", "mustard", "napkin", "nectar", "needle", "nickel",
    "noodle", "nutmeg", "oasis", "ocean", "olive", "onion", "orange", "orbit", "orchid", "otter",
    "oyster", "paddle", "palace", "panda", "panther", "paper", "parrot", "peach", "peanut",
    "pebble", "pelican", "pencil", "pepper", "piano", "pickle", "pigeon", "pillow", "pine",
    "planet", "plum", "pocket", "pony", "potato", "pretzel", "puzzle", "quartz", "quill", "rabbit",
    "radish", "raven", "ribbon", "river", "robin", "rocket", "saddle", "salmon", "sapphire",
    "scarf", "shadow", "silver", "sparrow", "spider", "spinach", "squid", "staple", "summit",
    "sunset", "tiger", "timber", "tomato", "tulip", "turnip", "turtle", "velvet", "violin",
    "walnut", "willow", "zebra",
];

/// The index of `word` (ASCII case-insensitive), if it is in the list.
pub fn index_of(word: &str) -> Option<u8> {
    WORDS
        .iter()
        .position(|w| w.eq_ignore_ascii_case(word))
        .and_then(|i| u8::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_lowercase_and_short() {
        let mut seen = std::collections::HashSet::new();
        for w in WORDS {
            assert!(seen.insert(w), "{w} twice");
            assert!((3..=8).contains(&w.len()), "{w}");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
        assert_eq!(index_of("ZEBRA"), Some(255));
        assert_eq!(index_of("acid"), Some(0));
        assert_eq!(index_of("nope"), None);
    }
}
