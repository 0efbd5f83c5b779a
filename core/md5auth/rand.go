package md5auth

import "crypto/rand"

// cryptoRand is the default randomness source.
var cryptoRand = rand.Reader
