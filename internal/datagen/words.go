package datagen

// The built-in word lists. They are small on purpose: enough variety for
// test data, without a faker dependency or locale data. Every list is
// non-empty; helpers pick from them with the caller's *rand.Rand.

var firstNames = []string{
	"Ada", "Alan", "Alice", "Amara", "Ana", "Ben", "Carla", "Chen", "Clara", "Daniel",
	"David", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
	"Jack", "James", "Julia", "Kai", "Kenji", "Lars", "Leila", "Liam", "Lucia", "Maria",
	"Mateo", "Mia", "Nadia", "Noah", "Olga", "Omar", "Paula", "Priya", "Rafael", "Rosa",
	"Sam", "Sara", "Sofia", "Tariq", "Tom", "Uma", "Victor", "Wei", "Yara", "Zoe",
}

var lastNames = []string{
	"Adams", "Alvarez", "Bauer", "Becker", "Brown", "Carter", "Chen", "Costa", "Dubois", "Evans",
	"Fischer", "Garcia", "Gomez", "Hansen", "Ito", "Jansen", "Johnson", "Kim", "Kowalski", "Larsen",
	"Lee", "Lopez", "Martin", "Meyer", "Moreau", "Nguyen", "Novak", "Okafor", "Olsen", "Patel",
	"Perez", "Rossi", "Sato", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Taylor", "Wagner",
}

var namePrefixes = []string{"Mr.", "Mrs.", "Ms.", "Miss", "Dr."}

var nameSuffixes = []string{"Jr.", "Sr.", "I", "II", "III", "IV", "V", "MD", "PhD"}

var jobDescriptors = []string{"Lead", "Senior", "Junior", "Principal", "Chief", "Global", "Regional", "Internal"}

var jobAreas = []string{"Data", "Marketing", "Security", "Operations", "Quality", "Research", "Infrastructure", "Support"}

var jobTypes = []string{"Engineer", "Analyst", "Manager", "Designer", "Architect", "Consultant", "Specialist", "Officer"}

// countries and countryCodes are picked independently, as faker does.
var countries = []string{
	"Argentina", "Australia", "Austria", "Belgium", "Brazil", "Canada", "Chile", "China",
	"Colombia", "Denmark", "Egypt", "Finland", "France", "Germany", "Greece", "India",
	"Indonesia", "Ireland", "Italy", "Japan", "Kenya", "Mexico", "Morocco", "Netherlands",
	"New Zealand", "Nigeria", "Norway", "Peru", "Poland", "Portugal", "South Africa",
	"South Korea", "Spain", "Sweden", "Switzerland", "Thailand", "Turkey", "United Kingdom",
	"United States", "Vietnam",
}

var countryCodes = []string{
	"AR", "AU", "AT", "BE", "BR", "CA", "CL", "CN", "CO", "DK", "EG", "FI", "FR", "DE",
	"GR", "IN", "ID", "IE", "IT", "JP", "KE", "MX", "MA", "NL", "NZ", "NG", "NO", "PE",
	"PL", "PT", "ZA", "KR", "ES", "SE", "CH", "TH", "TR", "GB", "US", "VN",
}

var cities = []string{
	"Amsterdam", "Athens", "Auckland", "Bangkok", "Barcelona", "Berlin", "Bogota", "Boston",
	"Buenos Aires", "Cairo", "Cape Town", "Chicago", "Copenhagen", "Dublin", "Helsinki",
	"Istanbul", "Jakarta", "Lagos", "Lima", "Lisbon", "London", "Madrid", "Melbourne",
	"Mexico City", "Milan", "Montreal", "Mumbai", "Nairobi", "Osaka", "Oslo", "Paris",
	"Rome", "Santiago", "Seattle", "Seoul", "Stockholm", "Sydney", "Tokyo", "Toronto",
	"Vienna", "Warsaw", "Zurich",
}

var states = []string{
	"Alabama", "Alaska", "Arizona", "California", "Colorado", "Florida", "Georgia", "Illinois",
	"Maine", "Michigan", "Nevada", "New York", "Ohio", "Oregon", "Texas", "Utah", "Vermont",
	"Virginia", "Washington", "Wisconsin",
}

var stateAbbrs = []string{
	"AL", "AK", "AZ", "CA", "CO", "FL", "GA", "IL", "ME", "MI", "NV", "NY", "OH", "OR",
	"TX", "UT", "VT", "VA", "WA", "WI",
}

var streetSuffixes = []string{"Street", "Avenue", "Road", "Lane", "Drive", "Way", "Court", "Place", "Boulevard", "Square"}

var englishWords = []string{
	"amber", "anchor", "apple", "arrow", "autumn", "basket", "beacon", "bridge", "candle", "canyon",
	"castle", "cedar", "cloud", "comet", "copper", "coral", "crystal", "delta", "desert", "echo",
	"ember", "falcon", "feather", "forest", "galaxy", "garden", "glacier", "harbor", "island", "jasmine",
	"lantern", "lemon", "marble", "meadow", "meteor", "mirror", "mountain", "nectar", "ocean", "orbit",
	"pebble", "pepper", "planet", "prairie", "quartz", "river", "rocket", "saddle", "shadow", "silver",
	"spring", "summit", "thunder", "timber", "tunnel", "valley", "velvet", "willow", "winter", "zephyr",
}

var loremWords = []string{
	"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
	"eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim",
	"ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip",
	"ex", "ea", "commodo", "consequat", "duis", "aute", "irure", "in", "reprehenderit", "voluptate",
	"velit", "esse", "cillum", "fugiat", "nulla", "pariatur", "excepteur", "sint", "occaecat", "cupidatat",
	"non", "proident", "sunt", "culpa", "qui", "officia", "deserunt", "mollit", "anim", "id", "est", "laborum",
}

var productAdjectives = []string{
	"Small", "Ergonomic", "Rustic", "Intelligent", "Gorgeous", "Incredible", "Fantastic", "Practical",
	"Sleek", "Awesome", "Handmade", "Generic", "Refined", "Modern", "Durable",
}

var productMaterials = []string{
	"Steel", "Wooden", "Concrete", "Plastic", "Cotton", "Granite", "Rubber", "Metal", "Soft",
	"Fresh", "Frozen", "Bamboo", "Bronze", "Leather", "Glass",
}

var products = []string{
	"Chair", "Car", "Computer", "Keyboard", "Mouse", "Bike", "Ball", "Gloves", "Pants", "Shirt",
	"Table", "Shoes", "Hat", "Towels", "Soap", "Tuna", "Chicken", "Fish", "Cheese", "Bacon",
	"Pizza", "Salad", "Sausages", "Chips", "Lamp",
}

var departments = []string{
	"Books", "Movies", "Music", "Games", "Electronics", "Computers", "Home", "Garden", "Tools",
	"Grocery", "Health", "Beauty", "Toys", "Kids", "Baby", "Clothing", "Shoes", "Jewelery",
	"Sports", "Outdoors", "Automotive", "Industrial",
}

var colors = []string{
	"red", "orange", "yellow", "green", "blue", "indigo", "violet", "black", "white", "gray",
	"silver", "gold", "maroon", "olive", "teal", "navy", "purple", "pink", "brown", "cyan",
}

var companySuffixes = []string{"Inc", "LLC", "Group", "and Sons", "Ltd", "GmbH", "SA", "Holdings"}

var catchAdjectives = []string{
	"Adaptive", "Balanced", "Centralized", "Cross-platform", "Distributed", "Enhanced", "Focused",
	"Integrated", "Multi-layered", "Open-source", "Proactive", "Robust", "Scalable", "Seamless",
}

var catchDescriptors = []string{
	"24/7", "asynchronous", "bi-directional", "client-driven", "dynamic", "fault-tolerant",
	"high-level", "incremental", "modular", "real-time", "stateless", "zero-downtime",
}

var catchNouns = []string{
	"architecture", "benchmark", "capability", "framework", "hierarchy", "interface", "middleware",
	"paradigm", "pipeline", "platform", "protocol", "solution", "throughput", "workforce",
}

var bsVerbs = []string{
	"aggregate", "architect", "deliver", "deploy", "empower", "enable", "engineer", "integrate",
	"leverage", "optimize", "orchestrate", "scale", "streamline", "transform",
}

var bsAdjectives = []string{
	"best-of-breed", "cloud-native", "end-to-end", "frictionless", "granular", "holistic",
	"mission-critical", "next-generation", "real-time", "scalable", "seamless", "vertical",
}

var bsNouns = []string{
	"channels", "communities", "data streams", "deliverables", "experiences", "infrastructures",
	"markets", "metrics", "networks", "platforms", "pipelines", "solutions", "supply-chains",
}

var transactionTypes = []string{"deposit", "withdrawal", "payment", "invoice"}

var currencyCodes = []string{"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL", "SEK", "NOK"}

// emailDomains are reserved example domains (RFC 2606), so generated
// addresses never belong to anyone.
var emailDomains = []string{"example.com", "example.net", "example.org"}

var domainSuffixes = []string{"com", "net", "org", "io", "info", "biz", "dev", "name"}

var phoneFormats = []string{"###-###-####", "(###) ###-####", "1-###-###-####", "###.###.####", "+1 ### ### ####"}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
	"curl/8.7.1",
}

var hackerAbbreviations = []string{"TCP", "HTTP", "SDD", "RAM", "GB", "CSS", "SSL", "AGP", "SQL", "FTP", "PCI", "AI", "ADP", "RSS", "XML", "EXE", "COM", "HDD", "THX", "SMTP", "SMS", "USB", "PNG", "SAS", "IB", "SCSI", "JSON", "XSS", "JBOD"}

var hackerAdjectives = []string{"auxiliary", "primary", "back-end", "digital", "open-source", "virtual", "cross-platform", "redundant", "online", "haptic", "multi-byte", "bluetooth", "wireless", "1080p", "neural", "optical", "solid state", "mobile"}

var hackerNouns = []string{"driver", "protocol", "bandwidth", "panel", "microchip", "program", "port", "card", "array", "interface", "system", "sensor", "firewall", "hard drive", "pixel", "alarm", "feed", "monitor", "application", "transmitter", "bus", "circuit", "capacitor", "matrix"}

var hackerVerbs = []string{"back up", "bypass", "hack", "override", "compress", "copy", "navigate", "index", "connect", "generate", "quantify", "calculate", "synthesize", "input", "transmit", "program", "reboot", "parse"}

var hackerIngverbs = []string{"backing up", "bypassing", "hacking", "overriding", "compressing", "copying", "navigating", "indexing", "connecting", "generating", "quantifying", "calculating", "synthesizing", "transmitting", "programming", "parsing"}

var monthsWide = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

var monthsAbbr = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

var weekdaysWide = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

var weekdaysAbbr = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

var weekdaysMin = []string{"Su", "Mo", "Tu", "We", "Th", "Fr", "Sa"}
